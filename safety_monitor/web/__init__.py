"""The review workspace: the web entrypoint (pages and API), a shell over the service layer like `cli/`."""
