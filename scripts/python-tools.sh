# Sourced by the scripts in this directory: a virtualenv with the pinned
# Python tools the API checks use, created once under target/ (ignored by
# git, kept between runs, removed by `cargo clean`).
# shellcheck shell=bash

TOOLS_REQUIREMENTS="openapi-spec-validator==0.9.0 schemathesis==4.32.5"
TOOLS_VENV="${CREDITOPS_TOOLS_VENV:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/python-tools}"

tools_venv() {
  local stamp="$TOOLS_VENV/.requirements"
  if [ ! -x "$TOOLS_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$TOOLS_REQUIREMENTS" ]; then
    echo "setting up $TOOLS_VENV ($TOOLS_REQUIREMENTS)" >&2
    rm -rf "$TOOLS_VENV"
    python3 -m venv "$TOOLS_VENV"
    # shellcheck disable=SC2086 # the pins are separate words
    "$TOOLS_VENV/bin/pip" install --quiet --disable-pip-version-check $TOOLS_REQUIREMENTS
    echo "$TOOLS_REQUIREMENTS" >"$stamp"
  fi
}
