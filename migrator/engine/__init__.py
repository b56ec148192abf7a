"""engine feature."""
