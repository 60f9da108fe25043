"""Python client for the Audiences server.

    import audiences

    client = audiences.Client()  # address and tokens from AUDIENCES_* or var/credentials.json
    client.track(user_id="ada", event="Signed In")
    client.close()

`Client` sends tracking calls in background batches and exposes every other RPC as a method
returning the generated message; `AsyncClient` has the same methods as coroutines, on
`grpc.aio`; every failure is an `AudiencesError`. The generated gRPC stubs
and messages live in `audiences.v1`.
"""

from audiences._sync import change_values
from audiences.aio import AsyncClient
from audiences.batching import BatchStats, Undelivered
from audiences.client import Client
from audiences.errors import AudiencesError, FieldViolation, InvalidArgument, QueueFull

__all__ = [
    "AsyncClient",
    "AudiencesError",
    "BatchStats",
    "Client",
    "FieldViolation",
    "InvalidArgument",
    "QueueFull",
    "Undelivered",
    "change_values",
]
__version__ = "0.1.0"
