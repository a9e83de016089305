"""Gated and private repositories: one message that says how to get access, from the store,
the command line and the server, against the fake Hub answering as the Hub does."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fake_hub import FakeHub
from fastapi.testclient import TestClient

from f5serve.core.settings import Settings
from f5serve.errors import ModelAccessDenied
from f5serve.http.app import create_app
from f5serve.registry import Catalog, ModelStore, load_catalog

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden"
REF_TEXT = "Some call me nature, others call me mother nature."
GRANTED = "hf_granted_token"
ADVICE = "and set HF_TOKEN to a token of an account that has access"

ACCESS_TOML = f"""
[[models]]
name = "tiny"
languages = ["en"]
checkpoint = "{GOLDEN / "dit_v1.safetensors"}"
vocab = "{GOLDEN / "vocab.txt"}"
arch = "tiny_v1"
vocoder = "{GOLDEN / "vocos"}"
default = true

[[models]]
name = "tiny-gated"
languages = ["vi"]
checkpoint = "hf://test/gated-f5/model_last.pt"
vocab = "hf://test/gated-f5/config.json"
arch = "tiny_v1"
vocoder = "{GOLDEN / "vocos"}"

[[models]]
name = "tiny-private"
languages = ["fr"]
checkpoint = "hf://test/private-f5/dit_v1.safetensors"
vocab = "hf://test/private-f5/vocab.txt"
arch = "tiny_v1"
vocoder = "{GOLDEN / "vocos"}"
"""


@pytest.fixture
def access_hub(hub: FakeHub) -> FakeHub:
    """The fake Hub with a gated repository (``GRANTED`` may read it) and a private one."""
    checkpoint = (GOLDEN / "dit_v1.safetensors").read_bytes()
    vocab = (GOLDEN / "vocab.txt").read_bytes()
    hub.add("test/gated-f5", "model_last.pt", checkpoint)
    hub.add("test/gated-f5", "config.json", vocab)
    hub.gated["test/gated-f5"] = {GRANTED}
    hub.add("test/private-f5", "dit_v1.safetensors", checkpoint)
    hub.add("test/private-f5", "vocab.txt", vocab)
    hub.private["test/private-f5"] = {"hf_owner_token"}
    return hub


@pytest.fixture
def access_file(tmp_path: Path) -> Path:
    path = tmp_path / "access.toml"
    path.write_text(ACCESS_TOML)
    return path


@pytest.fixture
def access_catalog(access_file: Path) -> Catalog:
    return load_catalog(access_file, {})


def _store(hub: FakeHub, cache: Path, token: str | bool) -> ModelStore:
    return ModelStore(cache, endpoint=hub.url, token=token, offline=False, progress="none")


@pytest.mark.parametrize(
    ("model", "token", "found"),
    [
        ("tiny-gated", False, "is gated"),  # 401 GatedRepo
        ("tiny-gated", "hf_not_granted", "is gated"),  # 403 GatedRepo
        ("tiny-private", False, "was not found or is private"),  # 401 RepoNotFound
        ("tiny-private", "hf_not_owner", "was not found or is private"),
    ],
)
def test_no_access_is_one_message_naming_the_model_page_and_hf_token(
    access_hub: FakeHub,
    access_catalog: Catalog,
    tmp_path: Path,
    model: str,
    token: str | bool,
    found: str,
) -> None:
    store = _store(access_hub, tmp_path / "cache", token)
    spec = access_catalog.get(model)
    with pytest.raises(ModelAccessDenied) as caught:
        store.fetch(spec)
    repo = "test/gated-f5" if model == "tiny-gated" else "test/private-f5"
    assert caught.value.message == (
        f"model {model!r}: repository {repo} {found}: accept its terms (request access) at "
        f"{access_hub.url}/{repo} {ADVICE}"
    )
    assert caught.value.code == "model_access_denied" and caught.value.http_status == 502
    assert not store.is_cached(spec)


def test_a_granted_token_downloads_the_gated_model(
    access_hub: FakeHub, access_catalog: Catalog, tmp_path: Path
) -> None:
    store = _store(access_hub, tmp_path / "cache", GRANTED)
    files = store.fetch(access_catalog.get("tiny-gated"))
    assert files.checkpoint.read_bytes() == (GOLDEN / "dit_v1.safetensors").read_bytes()
    assert files.vocab.name == "config.json"
    # once cached, the files serve without a token (the Hub's refusal falls back to the cache)
    again = _store(access_hub, tmp_path / "cache", False).fetch(access_catalog.get("tiny-gated"))
    assert again == files


def test_cli_pull_of_a_gated_model_says_how_to_get_access(
    access_hub: FakeHub, access_file: Path, tmp_path: Path
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "F5SERVE_"))}
    env = {
        **clean,
        "HF_ENDPOINT": access_hub.url,
        "HF_HOME": str(tmp_path / "hf-home"),  # no token saved by `hf auth login` either
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "F5SERVE_MODELS_FILE": str(access_file),
    }
    command = [sys.executable, "-m", "f5serve", "models", "pull", "tiny-gated"]
    where = ["--cache-dir", str(tmp_path / "cache")]
    denied = subprocess.run(
        [*command, *where], capture_output=True, text=True, timeout=300, env=env
    )
    assert denied.returncode == 1
    last = denied.stderr.strip().splitlines()[-1]
    assert last == (
        f"error: model 'tiny-gated': repository test/gated-f5 is gated: accept its terms "
        f"(request access) at {access_hub.url}/test/gated-f5 {ADVICE}"
    )
    assert "Traceback" not in denied.stderr
    granted = subprocess.run(
        [*command, *where],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env, "HF_TOKEN": GRANTED},
    )
    assert granted.returncode == 0, granted.stderr


def test_server_answers_a_typed_error_for_a_gated_model(
    access_hub: FakeHub, access_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", access_hub.url)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    voices = tmp_path / "voices"
    voices.mkdir()
    shutil.copy(Path(__file__).parents[1] / "fixtures" / "basic_ref_en.wav", voices / "n.wav")
    (voices / "n.txt").write_text(REF_TEXT)
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        models_file=access_file,
        voices_dir=voices,
        database_url=f"sqlite:///{tmp_path / 'f5serve.db'}",
        storage_url=str(tmp_path / "storage"),
        cache_dir=tmp_path / "cache",
        device="cpu",
        nfe_steps=2,
    )
    with TestClient(create_app(settings)) as client:
        r = client.post("/v1/tts", json={"text": "Xin chào.", "voice": "n", "model": "tiny-gated"})
    assert r.status_code == 502, r.text
    error = r.json()["error"]
    assert error["code"] == "model_access_denied"
    assert error["message"].startswith("model 'tiny-gated': repository test/gated-f5 is gated")
    assert ADVICE in error["message"]
    assert error["details"] == {"model": "tiny-gated", "repository": "test/gated-f5"}
