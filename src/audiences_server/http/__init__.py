"""The HTTP edge: Segment's tracking and Profile APIs, metrics and health, on the gRPC server's loop."""
