"""The engine: one method per use case, between the servicers and the store."""
