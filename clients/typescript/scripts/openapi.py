"""Print the server's OpenAPI document (``create_app(settings).openapi()``) as JSON.

The document does not depend on the deployment, so the settings point at a throw-away folder;
``tests/test_typescript_types.py`` compares this output with the committed ``openapi.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from f5serve.core.settings import Settings
from f5serve.http.app import create_app


def document() -> dict[str, Any]:
    """The OpenAPI document of an app on an empty deployment in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = Settings(  # type: ignore[call-arg]
            _env_file=None,
            database_url=f"sqlite:///{root / 'f5serve.db'}",
            storage_url=str(root / "storage"),
            voices_dir=root / "voices",
            cache_dir=root / "cache",
            preload=False,
        )
        return create_app(settings).openapi()


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(document()))
