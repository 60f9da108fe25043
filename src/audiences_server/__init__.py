"""Audiences: a self-hosted audience engine speaking the Segment tracking spec."""

__version__ = "0.1.0"
