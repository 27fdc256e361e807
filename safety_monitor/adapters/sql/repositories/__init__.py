"""Owns the SQL repositories of the pipeline, one module per aggregate; the unit of work composes them."""
