"""Sync: destinations, delivery, the change feed and CSV export."""
