"""The in-memory store: the ports of the SQL store over plain Python objects, one module per aggregate."""
