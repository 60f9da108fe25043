"""The cluster roles: front, identity stage and shards over a log (docs/scaling.md)."""
