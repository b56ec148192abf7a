"""waves feature."""
