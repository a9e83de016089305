"""A typed Python client for f5serve's HTTP API, sync (:class:`Client`) and async
(:class:`AsyncClient`), on httpx. It does not import the server (no torch)::

    from f5serve.client import Client

    with Client("http://127.0.0.1:8000") as client:
        audio = client.speech("Hello.", voice="narrator", response_format="mp3", seed=1)
        for piece in client.stream_speech("A long text ...", voice="narrator"):
            ...  # raw 24 kHz s16le as each chunk finishes
"""

from f5serve.client.aio import AsyncClient
from f5serve.client.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    F5ServeClientError,
    GatewayTimeoutError,
    GoneError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServiceUnavailableError,
    StreamError,
    UnsupportedMediaTypeError,
)
from f5serve.client.sync import Client
from f5serve.client.types import (
    Job,
    JobList,
    JobProgress,
    KeyUsage,
    Model,
    Segment,
    Speech,
    SpeechFields,
    SpeechOptions,
    Voice,
)

__all__ = [
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "F5ServeClientError",
    "GatewayTimeoutError",
    "GoneError",
    "InvalidRequestError",
    "Job",
    "JobFailedError",
    "JobList",
    "JobProgress",
    "KeyUsage",
    "Model",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "Segment",
    "ServiceUnavailableError",
    "Speech",
    "SpeechFields",
    "SpeechOptions",
    "StreamError",
    "UnsupportedMediaTypeError",
    "Voice",
]
