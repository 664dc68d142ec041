#!/usr/bin/env bash
# Validates the committed OpenAPI documents (openapi/*.json) with an
# independent validator, PyPI openapi-spec-validator (pinned), so what the
# services publish is valid OpenAPI 3.1 by a judge other than the library
# that generated it.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python-tools.sh
tools_venv

documents=(openapi/*.json)
[ -e "${documents[0]}" ] || { echo "no documents under openapi/" >&2; exit 1; }
"$TOOLS_VENV/bin/openapi-spec-validator" "${documents[@]}"
