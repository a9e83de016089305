"""Service settings: environment (``F5SERVE_*``), a ``.env`` file, or ``f5serve serve`` flags.

Only the service edge reads settings; they are passed to :func:`f5serve.http.app.create_app`
and never imported as a global.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from f5serve.engine.asr import DEFAULT_MODEL as DEFAULT_ASR_MODEL
from f5serve.engine.options import SynthesisOptions, option_fields

MB = 1_000_000
UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
SIZE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(i?)b?", re.IGNORECASE)
DEVICE = re.compile(r"cpu|mps|cuda(:\d+)?")
ENGINE_DEFAULTS = SynthesisOptions()


def parse_bytes(text: str) -> int:
    """``"20GB"`` → 20·10⁹, ``"8GiB"`` → 8·2³⁰, ``"512M"``, ``"1.5 GB"``, ``"1000000"`` (bytes).
    Units: k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024), an optional B."""
    match = SIZE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text.strip()!r} is not a size such as 20GB, 8GiB or 512MB")
    number, unit, binary = match.groups()
    if binary and not unit:
        raise ValueError(f"{text.strip()!r} is not a size such as 20GB, 8GiB or 512MB")
    scale = 1024 ** ("kmgt".index(unit.lower()) + 1) if binary else UNITS[unit.lower()]
    value = int(float(number) * scale)
    if value < 1:
        raise ValueError(f"{text.strip()!r}: a memory budget must be more than 0 bytes")
    return value


def parse_memory_budget(text: str) -> int | dict[str, int]:
    """``"20GB"`` (every device) or ``"cuda:0=20GB,cpu=8GB"`` (per device; ``cuda`` means
    ``cuda:0``; a device not named is unlimited)."""
    if "=" not in text:
        return parse_bytes(text)
    budget: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        device, sep, size = (x.strip() for x in part.partition("="))
        device = device.lower()
        if not sep or DEVICE.fullmatch(device) is None:
            raise ValueError(
                f"{part!r} is not DEVICE=SIZE with DEVICE cpu, mps, cuda or cuda:N (cuda:0=20GB)"
            )
        budget["cuda:0" if device == "cuda" else device] = parse_bytes(size)
    return budget


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
        description="Comma-separated admin API keys for `Authorization: Bearer` (beside those "
        "of `f5serve keys create`); no keys at all = open.",
    )
    # state
    database_url: str = Field(
        default="sqlite:///./f5serve-data/f5serve.db",
        description="SQLAlchemy URL of the job and voice database (sqlite:/// or postgresql://).",
    )
    database_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a database call may wait for a lock or run (then 503).",
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
    pronunciations_file: Path | None = Field(
        default=None,
        description="JSON file of {word or /pattern/: replacement} applied to every request "
        "(before the voice's and the request's own).",
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
        description="Rows × padded frames of one batched forward (default on CUDA: from the "
        "free memory, 65536 to 262144; 16384 on MPS; 1 on a CPU: one chunk at a time).",
    )
    compile: Literal["off", "auto", "on", "max"] = Field(
        default="off",
        description="torch.compile the DiT at load: on, max (max-autotune: slower to compile), "
        "auto (on for CUDA, off elsewhere) or off; compiled code is cached under the model cache.",
    )
    cuda_graphs: Literal["off", "auto"] = Field(
        default="auto",
        description="Replay the flow steps of an unchanged batch from CUDA graphs: auto (on "
        "for CUDA) or off.",
    )
    packing: Literal["off", "auto", "on"] = Field(
        default="off",
        description="Run a batch's rows of different lengths packed, without padding: auto (on "
        "for CUDA in float16/bfloat16, where the variable-length attention kernel runs), on or "
        "off (the default until measured on a GPU).",
    )
    openers: Literal["off", "first", "alone"] = Field(
        default="first",
        description="Streams' first chunks in the batch: first (before other waiting chunks), "
        "alone (also keep other chunks out of a batch that runs them) or off (arrival order).",
    )
    opener_frames: int | None = Field(
        default=None,
        ge=1,
        description="Run streams' first chunks in waves of at most this many frames (rows × "
        "frames) so that the first listeners of many streams starting at once hear audio "
        "sooner (default: no limit).",
    )
    preload: bool = Field(default=True, description="Load the default model at start-up.")
    model_memory_budget: str | None = Field(
        default=None,
        description="Memory for loaded models, per device: 20GB, 8GiB (every device) or "
        "cuda:0=20GB,cpu=8GB (least recently used models are unloaded to fit; default: no limit).",
    )
    max_loaded_models: int | None = Field(
        default=None, ge=1, description="Most models in memory at once, the default one included."
    )
    model_idle_seconds: float | None = Field(
        default=None,
        gt=0,
        description="Unload a model unused this long (never the default model; default: never).",
    )
    # speech recognition (the extra f5serve[asr])
    asr_model: str = Field(
        default=DEFAULT_ASR_MODEL,
        description="Whisper model that transcribes references given without ref_text and "
        "runs quality_check: a Hugging Face repository or a local folder.",
    )
    asr_device: str | None = Field(
        default=None,
        description="cpu, cuda, cuda:N or mps for the speech recognition (default: best).",
    )
    check_ref_text: bool = Field(
        default=True,
        description="Compare the ref_text of a voice with what speech recognition hears in its "
        "clip, and warn when they disagree (needs f5serve[asr]).",
    )
    ref_text_max_cer: float = Field(
        default=0.3,
        ge=0,
        description="Character error rate over which ref_text and the clip disagree.",
    )
    # synthesis defaults: a field named like a synthesis option is the service's default of it
    nfe_steps: int = Field(
        default=ENGINE_DEFAULTS.nfe_steps, description="Flow steps when a request gives none."
    )
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
    key_requests_per_minute: int | None = Field(
        default=None,
        ge=1,
        description="Requests per minute of an API key that sets no limit of its own (429; "
        "default: no limit).",
    )
    key_audio_seconds_per_day: float | None = Field(
        default=None,
        gt=0,
        description="Seconds of audio per UTC day of an API key that sets no limit of its own "
        "(429; default: no limit).",
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
    job_lease_seconds: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a running job stays claimed without a heartbeat; the jobs of a "
        "worker that died are re-run after it (renewed every third of it).",
    )
    job_max_attempts: int = Field(
        default=3,
        ge=1,
        description="Attempts of a job whose failures are transient (storage, device, internal); "
        "invalid input is never tried again.",
    )
    run_worker: bool = Field(default=True, description="Run the job worker in the API process.")
    worker_models: str = Field(
        default="",
        description="Comma-separated models whose job queues this process serves (PostgreSQL; "
        "empty = every model).",
    )
    advertise_url: str | None = Field(
        default=None,
        description="URL where API replicas reach this worker (PostgreSQL; default "
        "http://HOST:PORT, the machine's name for 0.0.0.0).",
    )
    log_level: str = Field(default="info", description="debug, info, warning or error.")

    @field_validator(
        "voices_dir",
        "pronunciations_file",
        "models_file",
        "cache_dir",
        "storage_endpoint_url",
        "storage_region",
        "storage_access_key_id",
        "storage_secret_access_key",
        "max_loaded_models",
        "model_idle_seconds",
        "key_requests_per_minute",
        "key_audio_seconds_per_day",
        "advertise_url",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("model_memory_budget", mode="before")
    @classmethod
    def _budget_is_valid(cls, value: object) -> object:
        if value == "":
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(int(value))  # bytes, from Python
        if isinstance(value, Mapping):
            value = ",".join(f"{device}={size}" for device, size in value.items())
        if isinstance(value, str):
            parse_memory_budget(value)  # a ValueError here names the bad part
        return value

    def synthesis_defaults(self) -> SynthesisOptions:
        """The options of a request that gives none: the engine's, with this service's."""
        names = [f.name for f in option_fields() if f.name in type(self).model_fields]
        return SynthesisOptions(**{name: getattr(self, name) for name in names})

    def memory_budget(self) -> int | dict[str, int] | None:
        """``model_memory_budget`` in bytes: one number for every device, per device, or None."""
        text = self.model_memory_budget
        return None if text is None else parse_memory_budget(text)

    def storage_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`~f5serve.core.storage.open_storage` for the S3
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

    def worker_url(self) -> str:
        """Where API replicas reach this process: ``advertise_url``, else from host and port."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def worker_model_list(self) -> list[str]:
        """The models of ``worker_models`` (empty: every model)."""
        return [m.strip() for m in self.worker_models.split(",") if m.strip()]

    @property
    def api_key_set(self) -> frozenset[str]:
        """The API keys of ``api_keys`` (admin keys)."""
        return frozenset(k.strip() for k in self.api_keys.split(",") if k.strip())
