"""Adapters: SQL store, in-memory fakes, SMTP and file mailers, templates, the clock, criteria files."""
