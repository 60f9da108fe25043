"""Sync (SPEC §8): destinations, connections, delivery, the change feed and CSV."""
