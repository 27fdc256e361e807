"""Command-line entrypoint: the safety-monitor command and its subcommands."""
