"""Python client for the Audiences server.

The generated gRPC stubs and messages live in `audiences.v1`.
"""
