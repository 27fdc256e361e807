"""Owns the condition kinds a safety rule can use; each kind is one module with a pure evaluate function."""
