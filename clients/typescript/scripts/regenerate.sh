#!/usr/bin/env bash
# Regenerate openapi.json and src/api.d.ts (openapi-typescript) from the server's current OpenAPI
# document. Run from anywhere, with the project's Python environment active (or PYTHON set).
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
"${PYTHON:-python}" "$here/scripts/openapi.py" > "$here/openapi.json"
cd "$here"
[ -d node_modules ] || npm ci
npx openapi-typescript openapi.json --default-non-nullable false --output src/api.d.ts
# the document's hash, which tests/unit/test_typescript_types.py checks
sed -i "1i // openapi.json sha256 $(sha256sum openapi.json | cut -d' ' -f1)" src/api.d.ts
