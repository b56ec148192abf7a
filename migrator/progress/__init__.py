"""progress feature."""
