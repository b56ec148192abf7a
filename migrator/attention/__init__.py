"""Attention items: what needs a person, raised and resolved by the events themselves."""
