"""Service settings: environment (``F5SERVE_*``), a ``.env`` file, or ``f5serve serve`` flags.

Only the service edge reads settings; they are passed to :func:`f5serve.service.app.create_app`
and never imported as a global.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MB = 1_000_000


class Settings(BaseSettings):
    """Everything ``f5serve serve`` can be told. Each field is ``F5SERVE_<NAME>`` in the
    environment (lists as comma-separated values)."""

    model_config = SettingsConfigDict(
        env_prefix="F5SERVE_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,  # storage_url=... works beside its environment aliases
    )

    # network
    host: str = Field(default="127.0.0.1", description="Address to bind.")
    port: int = Field(default=8000, description="TCP port.")
    api_keys: str = Field(
        default="",
        description="Comma-separated API keys for `Authorization: Bearer`; empty = open.",
    )
    # state
    database_url: str = Field(
        default="sqlite:///./f5serve-data/f5serve.db",
        description="SQLAlchemy URL of the job and voice database (sqlite:/// or postgresql://).",
    )
    storage_url: str = Field(
        default="./f5serve-data/storage",
        description="Directory (or s3://bucket/prefix) for audio (env also F5SERVE_STORAGE).",
        validation_alias=AliasChoices("F5SERVE_STORAGE_URL", "F5SERVE_STORAGE"),
    )
    storage_endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint of a non-AWS service (default: AWS_ENDPOINT_URL_S3/_URL, or AWS).",
    )
    storage_region: str | None = Field(
        default=None, description="S3 region (default: AWS_REGION/AWS_DEFAULT_REGION, us-east-1)."
    )
    storage_access_key_id: str | None = Field(
        default=None, description="S3 access key id (default: AWS_ACCESS_KEY_ID or boto3's chain)."
    )
    storage_secret_access_key: SecretStr | None = Field(
        default=None, description="S3 secret key (default: AWS_SECRET_ACCESS_KEY or boto3's chain)."
    )
    storage_url_expires: int = Field(
        default=3600, description="Lifetime in seconds of presigned download URLs (S3; ≤ 7 days)."
    )
    voices_dir: Path | None = Field(
        default=Path("./sample"),
        description="Folder of <name>.wav + <name>.txt voices imported at start-up.",
    )
    # models
    models_file: Path | None = Field(default=None, description="TOML file of user models.")
    cache_dir: Path | None = Field(
        default=None, description="Model cache (default: Hugging Face's)."
    )
    default_model: str | None = Field(
        default=None,
        description="Model when none is asked for (default: the catalogue's, f5tts-v1-base).",
    )
    default_voice: str | None = Field(default=None, description="Voice when a request names none.")
    device: str | None = Field(
        default=None, description="cpu, cuda, cuda:N or mps (default: best)."
    )
    dtype: str | None = Field(default=None, description="float32, float16 or bfloat16.")
    max_batch_frames: int | None = Field(
        default=None,
        ge=1,
        description="Rows × padded frames of one batched forward (default: 65536 on CUDA, "
        "16384 on MPS, 1 on a CPU: one chunk at a time).",
    )
    preload: bool = Field(default=True, description="Load the default model at start-up.")
    # synthesis defaults
    nfe_steps: int = Field(default=32, description="Flow steps when a request gives none.")
    # limits
    max_text_chars: int = Field(
        default=4096, description="Longest text of /v1/tts and /v1/audio/speech."
    )
    max_job_text_chars: int = Field(default=100_000, description="Longest text of a job.")
    max_upload_bytes: int = Field(default=10 * MB, description="Largest uploaded or base64 audio.")
    max_reference_seconds: float = Field(
        default=60.0,
        description="Longest reference upload (it is cut to 12 s of speech when used).",
    )
    max_queued_requests: int = Field(
        default=64, description="Waiting sync requests per model before 503."
    )
    max_queued_jobs: int = Field(
        default=10_000, description="Queued jobs before POST /v1/jobs gives 429."
    )
    request_timeout: float = Field(
        default=600.0, description="Seconds a sync request may take (504)."
    )
    job_timeout: float = Field(default=600.0, description="Seconds a job may run before it fails.")
    # jobs
    job_workers: int = Field(
        default=2, description="Jobs run at once in this process (they batch)."
    )
    job_retention: float = Field(
        default=86_400.0, description="Seconds a finished job's audio is kept before it expires."
    )
    cleanup_interval: float = Field(default=60.0, description="Seconds between retention sweeps.")
    run_worker: bool = Field(default=True, description="Run the job worker in the API process.")
    log_level: str = Field(default="info", description="debug, info, warning or error.")

    @field_validator(
        "voices_dir",
        "models_file",
        "cache_dir",
        "storage_endpoint_url",
        "storage_region",
        "storage_access_key_id",
        "storage_secret_access_key",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~f5serve.service.storage.open_storage` for the S3
        backend (what is unset here comes from the AWS variables)."""
        secret = self.storage_secret_access_key
        given = {
            "endpoint_url": self.storage_endpoint_url,
            "region": self.storage_region,
            "access_key_id": self.storage_access_key_id,
            "secret_access_key": secret.get_secret_value() if secret is not None else None,
        }
        return {k: v for k, v in given.items() if v is not None} | {
            "presign_expires": self.storage_url_expires
        }

    @property
    def api_key_set(self) -> frozenset[str]:
        """The configured API keys (empty: the API is open)."""
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())
