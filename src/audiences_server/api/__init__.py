"""gRPC servicers: decode the request, call the engine, encode the reply; nothing else."""
