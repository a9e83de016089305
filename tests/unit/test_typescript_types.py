"""The TypeScript client's committed OpenAPI snapshot and generated types
(``clients/typescript/openapi.json``, ``src/api.d.ts``) follow the server's current document:
a schema change without ``clients/typescript/scripts/regenerate.sh`` fails here."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from types import ModuleType

CLIENT = Path(__file__).parents[2] / "clients" / "typescript"
REGENERATE = "run clients/typescript/scripts/regenerate.sh"


def openapi_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "openapi_script", CLIENT / "scripts" / "openapi.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_openapi_snapshot_is_the_current_document() -> None:
    script = openapi_script()
    live = script.render(script.document())
    assert (CLIENT / "openapi.json").read_text() == live, f"the API changed: {REGENERATE}"


def test_the_generated_types_come_from_the_snapshot() -> None:
    digest = hashlib.sha256((CLIENT / "openapi.json").read_bytes()).hexdigest()
    first_line = (CLIENT / "src" / "api.d.ts").read_text().splitlines()[0]
    assert first_line == f"// openapi.json sha256 {digest}", f"stale types: {REGENERATE}"
