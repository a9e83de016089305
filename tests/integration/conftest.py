"""Fixtures of the integration tests: a fake Hub on loopback serving the tiny model, empty
databases (SQLite, and PostgreSQL where a server answers), and a moto S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_hub import FakeHub
from fresh_databases import fresh_postgres
from moto_s3 import Moto, moto_s3

from f5serve.registry import Catalog, ModelStore, load_catalog

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden"

TINY_TOML = """
[[models]]
name = "tiny-en"
languages = ["en"]
checkpoint = "hf://test/tiny-f5/dit_v1.safetensors"
vocab = "hf://test/tiny-f5/vocab.txt"
arch = "tiny_v1"
vocoder = "hf://test/tiny-vocos"
licence = "mit"
default = true

[[models]]
name = "tiny-listed"
languages = ["de"]
checkpoint = "hf://test/tiny-listed"
vocab = "hf://test/tiny-listed/vocab.txt"
arch = "tiny_v1"
vocoder = "hf://test/tiny-vocos"
"""


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    """A fake Hub: the tiny golden model in ``test/tiny-f5``, its Vocos in ``test/tiny-vocos``,
    and ``test/tiny-listed``, whose checkpoint is picked from the listing (three candidates)."""
    fake = FakeHub()
    checkpoint = (GOLDEN / "dit_v1.safetensors").read_bytes()
    vocab = (GOLDEN / "vocab.txt").read_bytes()
    fake.add("test/tiny-f5", "dit_v1.safetensors", checkpoint)
    fake.add("test/tiny-f5", "vocab.txt", vocab)
    fake.add("test/tiny-f5", "README.md", b"# tiny\n")
    fake.add("test/tiny-vocos", "config.yaml", (GOLDEN / "vocos" / "config.yaml").read_bytes())
    fake.add(
        "test/tiny-vocos",
        "pytorch_model.bin",
        (GOLDEN / "vocos" / "pytorch_model.bin").read_bytes(),
    )
    fake.add("test/tiny-listed", "model_100.safetensors", b"not the newest")
    fake.add("test/tiny-listed", "model_200.safetensors", checkpoint)
    fake.add("test/tiny-listed", "model_300.pt", b"a .pt loses to any .safetensors")
    fake.add("test/tiny-listed", "vocab.txt", vocab)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def models_file(tmp_path: Path) -> Path:
    path = tmp_path / "models.toml"
    path.write_text(TINY_TOML)
    return path


@pytest.fixture
def catalog(models_file: Path) -> Catalog:
    return load_catalog(models_file, {})


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def store(hub: FakeHub, cache_dir: Path) -> ModelStore:
    return ModelStore(cache_dir, endpoint=hub.url, offline=False, progress="none", environ={})


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """An empty database of its own on the test PostgreSQL server (skips when none answers)."""
    with fresh_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture(scope="session")
def moto() -> Iterator[Moto]:
    """A moto S3 server on loopback with the test bucket and two IAM users (skips without
    moto)."""
    with moto_s3() as server:
        yield server
