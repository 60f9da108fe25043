"""Sync (docs/sync.md): destinations, connections, delivery, the change feed and CSV."""
