"""Pure domain logic: no gRPC, no SQL connection, no imports from the rest of the project."""
