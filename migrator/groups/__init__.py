"""groups feature."""
