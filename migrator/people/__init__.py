"""people feature."""
