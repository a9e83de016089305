"""The real download path (huggingface_hub over HTTP) against a fake Hub on loopback."""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from fake_hub import FakeHub
from huggingface_hub import constants

from f5serve.errors import DownloadError, IntegrityError, ModelUnavailable
from f5serve.registry import Catalog, ModelRegistry, ModelStore, load_catalog

GOLDEN = Path(__file__).parents[1] / "fixtures" / "golden"
REF_TEXT = "Some call me nature, others call me mother nature."


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def file_gets(hub: FakeHub) -> Counter[str]:
    return Counter(r.path for r in hub.requests if r.method == "GET" and "/resolve/" in r.path)


def test_pull_through_the_hub_endpoint_then_load_and_synthesise(
    hub: FakeHub, catalog: Catalog, store: ModelStore, fixtures_dir: Path
) -> None:
    registry = ModelRegistry(catalog, store, device="cpu")
    name, engine = registry.engine_for("Hello there, this is a test.")  # auto → default model
    assert name == "tiny-en"
    files = store.cached(catalog.get("tiny-en"))
    assert files is not None
    assert sha256(files.checkpoint) == sha256(GOLDEN / "dit_v1.safetensors")
    assert files.vocoder.joinpath("config.yaml").is_file()
    assert store.cache_dir in files.checkpoint.parents  # the HF cache layout, in our cache dir
    result = engine.synthesize(
        "Hello there.", fixtures_dir / "basic_ref_en.wav", REF_TEXT, nfe_steps=2, seed=0
    )
    assert result.sample_rate == 24000 and len(result.audio) > 2400
    assert np.isfinite(result.audio).all()
    assert set(file_gets(hub)) == {
        "/test/tiny-f5/resolve/main/dit_v1.safetensors",
        "/test/tiny-f5/resolve/main/vocab.txt",
        "/test/tiny-vocos/resolve/main/config.yaml",
        "/test/tiny-vocos/resolve/main/pytorch_model.bin",
    }


def test_cut_connection_resumes_with_a_range_request(
    hub: FakeHub, catalog: Catalog, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # huggingface_hub keeps what it received in 10 MB chunks; with 64 KiB chunks the 1.5 MB
    # tiny checkpoint spans many, so a cut after 300 kB leaves four whole chunks to resume from.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    hub.cut_after["dit_v1.safetensors"] = 300_000
    files = store.fetch(catalog.get("tiny-en"))
    gets = hub.gets("dit_v1.safetensors")
    assert [g.range for g in gets] == [None, f"bytes={4 * 64 * 1024}-"]
    assert sha256(files.checkpoint) == sha256(GOLDEN / "dit_v1.safetensors")


def test_corrupted_download_is_detected_removed_and_fetched_again_by_a_retry(
    hub: FakeHub, catalog: Catalog, store: ModelStore
) -> None:
    spec = catalog.get("tiny-en")
    hub.corrupt.add("dit_v1.safetensors")
    with pytest.raises(IntegrityError) as caught:
        store.fetch(spec)
    message = caught.value.message
    assert "model 'tiny-en': dit_v1.safetensors is corrupted" in message
    assert sha256(GOLDEN / "dit_v1.safetensors") in message
    assert "`f5serve models pull tiny-en`" in message
    assert not store.is_cached(spec)
    assert not list((store.cache_dir / "models--test--tiny-f5" / "blobs").glob("*"))
    hub.corrupt.clear()
    files = store.fetch(spec)
    assert sha256(files.checkpoint) == sha256(GOLDEN / "dit_v1.safetensors")


@pytest.mark.parametrize("target", ["dit_v1.safetensors", "vocab.txt"])
def test_tampered_cached_file_is_detected_on_the_next_fetch(
    hub: FakeHub, catalog: Catalog, store: ModelStore, target: str
) -> None:
    spec = catalog.get("tiny-en")
    files = store.fetch(spec)
    path = files.checkpoint if target.endswith(".safetensors") else files.vocab
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[100] ^= 0x01  # one flipped bit (sha256 for LFS files, git blob sha1 for small ones)
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match=f"{target} is corrupted"):
        store.fetch(spec)
    assert not blob.exists()


def test_offline_mode_uses_the_cache_with_the_hub_stopped(
    hub: FakeHub, catalog: Catalog, store: ModelStore
) -> None:
    online = {name: store.fetch(catalog.get(name)) for name in ("tiny-en", "tiny-listed")}
    hub.stop()
    offline = ModelStore(store.cache_dir, environ={"HF_HUB_OFFLINE": "1", "HF_ENDPOINT": hub.url})
    assert offline.offline
    for name, files in online.items():
        assert offline.fetch(catalog.get(name)) == files
    engine = ModelRegistry(catalog, offline, device="cpu").engine("tiny-en")
    assert engine.vocab is not None


def test_unreachable_hub_falls_back_to_the_cache(
    hub: FakeHub, catalog: Catalog, store: ModelStore
) -> None:
    files = store.fetch(catalog.get("tiny-en"))
    url = hub.url
    hub.stop()
    assert (
        ModelStore(store.cache_dir, endpoint=url, environ={}).fetch(catalog.get("tiny-en")) == files
    )


def test_offline_with_an_empty_cache_names_the_model_and_the_pull_command(
    catalog: Catalog, cache_dir: Path
) -> None:
    offline = ModelStore(cache_dir, offline=True, environ={})
    for name in ("tiny-en", "tiny-listed", "f5tts-v1-base", "f5tts-es"):
        with pytest.raises(ModelUnavailable) as caught:
            offline.fetch(catalog.get(name))
        message = caught.value.message
        assert message.startswith(f"model {name!r} is not available offline")
        assert f"`f5serve models pull {name}`" in message
        assert caught.value.code == "model_unavailable" and caught.value.http_status == 503


def test_two_concurrent_pulls_download_each_file_once(
    hub: FakeHub, catalog: Catalog, cache_dir: Path
) -> None:
    hub.delay = 0.1
    spec = catalog.get("tiny-en")
    results: list[Path] = []

    def pull() -> None:
        mine = ModelStore(cache_dir, endpoint=hub.url, progress="none", environ={})
        results.append(mine.fetch(spec).checkpoint)

    threads = [threading.Thread(target=pull) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results[0] == results[1]
    assert set(file_gets(hub).values()) == {1}
    assert len(file_gets(hub)) == 4


def test_checkpoint_not_named_on_the_card_is_picked_from_the_listing(
    hub: FakeHub, catalog: Catalog, store: ModelStore
) -> None:
    files = store.fetch(catalog.get("tiny-listed"))
    assert files.checkpoint.name == "model_200.safetensors"
    assert any(r.path == "/api/models/test/tiny-listed/tree/main" for r in hub.requests)
    assert not hub.gets("model_100.safetensors") and not hub.gets("model_300.pt")
    # Once cached, the listing is not asked again (only `models pull` refreshes it).
    hub.requests.clear()
    store.fetch(catalog.get("tiny-listed"))
    assert not any(r.path.startswith("/api/") for r in hub.requests)


def test_missing_file_in_the_repository_is_a_download_error(
    hub: FakeHub, store: ModelStore, tmp_path: Path
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        '[[models]]\nname = "bad"\nlanguages = ["en"]\narch = "tiny_v1"\n'
        'checkpoint = "hf://test/tiny-f5/missing.safetensors"\nvocab = "hf://test/tiny-f5/vocab.txt"\n'
    )
    with pytest.raises(
        DownloadError, match=re.escape("hf://test/tiny-f5/missing.safetensors was not found")
    ):
        store.fetch(load_catalog(path, {}).get("bad"))


def test_hf_token_is_sent_to_the_hub(
    hub: FakeHub, catalog: Catalog, store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    store.fetch(catalog.get("tiny-en"))
    assert {r.auth for r in hub.requests} == {"Bearer hf_test_token"}


def test_remove_frees_the_model_but_keeps_the_shared_vocoder(
    hub: FakeHub, catalog: Catalog, store: ModelStore
) -> None:
    tiny, listed = catalog.get("tiny-en"), catalog.get("tiny-listed")
    store.fetch(tiny)
    store.fetch(listed)
    freed = store.remove(tiny, keep=[listed])
    assert (
        freed
        == (GOLDEN / "dit_v1.safetensors").stat().st_size + (GOLDEN / "vocab.txt").stat().st_size
    )
    assert not store.is_cached(tiny) and store.is_cached(listed)
    assert store.remove(tiny, keep=[listed]) == 0


def test_servers_get_download_progress_as_log_lines(
    hub: FakeHub, catalog: Catalog, cache_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ModelStore(cache_dir, endpoint=hub.url, progress="log", environ={})
    with caplog.at_level("INFO", logger="f5serve.registry"):
        store.fetch(catalog.get("tiny-en"))
    lines = [r.getMessage() for r in caplog.records if "dit_v1.safetensors" in r.getMessage()]
    assert lines and lines[-1].endswith("dit_v1.safetensors: 100% of 1.5 MB")
