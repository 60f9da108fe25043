"""Destinations: one module per kind behind one protocol (base.py), found through the registry."""
