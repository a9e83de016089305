#!/usr/bin/env bash
# Refresh the Swagger UI and ReDoc files that /docs and /redoc serve from the package
# (src/f5serve/http/web/vendor/), from the npm registry. Run by hand when upgrading them; the
# files are committed, so neither the set-up nor the server needs network access.
#
#   scripts/vendor-docs-assets.sh [SWAGGER_UI_VERSION] [REDOC_VERSION]
set -euo pipefail

swagger="${1:-5.35.0}"
redoc="${2:-2.5.4}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/src/f5serve/http/web/vendor"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm pack --silent "swagger-ui-dist@$swagger" "redoc@$redoc" >/dev/null
mkdir swagger redoc
tar xzf "swagger-ui-dist-$swagger.tgz" -C swagger --strip-components 1
tar xzf "redoc-$redoc.tgz" -C redoc --strip-components 1

rm -rf "$vendor" && mkdir -p "$vendor/swagger-ui" "$vendor/redoc"
cp swagger/{swagger-ui-bundle.js,swagger-ui-bundle.js.LICENSE.txt,swagger-ui.css,LICENSE,NOTICE} \
    "$vendor/swagger-ui/"
cp redoc/bundles/{redoc.standalone.js,redoc.standalone.js.LICENSE.txt} redoc/LICENSE "$vendor/redoc/"
# ReDoc's sidebar shows a logo from cdn.redoc.ly; an empty data: URL makes it hide itself offline.
sed -i 's#"https://cdn.redoc.ly/redoc/logo-mini.svg"#"data:,"#' "$vendor/redoc/redoc.standalone.js"
printf 'swagger-ui-dist %s (Apache-2.0)\nredoc %s (MIT)\n' "$swagger" "$redoc" >"$vendor/VERSIONS"
echo "vendored swagger-ui-dist $swagger and redoc $redoc into $vendor"
