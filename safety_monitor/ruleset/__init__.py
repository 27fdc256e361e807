"""Rule files: YAML under rules/ turned into domain rules, with every error reported by file, line and key."""
