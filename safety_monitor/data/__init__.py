"""Package data: CTCAE grading criteria files, one per CTCAE version (read by adapters.ctcae_criteria)."""
