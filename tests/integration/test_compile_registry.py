"""The registry compiles what it loads when told to, with the compiled code under its cache."""

from __future__ import annotations

import os

import pytest

from f5serve import Engine
from f5serve.registry import Catalog, ModelRegistry, ModelStore


@pytest.mark.parametrize(("mode", "compiled"), [("on", ["on"]), ("auto", []), ("off", [])])
def test_registry_compiles_loaded_engines_with_the_cache_under_the_model_cache(
    catalog: Catalog,
    store: ModelStore,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    compiled: list[str],
) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "")  # restored after the test ...
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")  # ... in which it is unset
    calls: list[str] = []
    monkeypatch.setattr(Engine, "compile", lambda self, m="on": calls.append(m) or 1.0)
    ModelRegistry(catalog, store, device="cpu", compile_mode=mode).engine("tiny-en")
    assert calls == compiled  # auto is off on a CPU
    expected = str(store.cache_dir / "torch-compile") if compiled else None
    assert os.environ.get("TORCHINDUCTOR_CACHE_DIR") == expected
