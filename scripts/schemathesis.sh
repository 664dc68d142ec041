#!/usr/bin/env bash
# Property-based API tests: starts `creditops serve --dev` (SQLite in a temp
# data dir, free ports), mints a token for a demo person of each service's
# role and runs pinned schemathesis against the service's own
# /openapi.json. Checks: no 5xx, every answer's status, content type and
# body conform to the document. A failure is a bug in the server or in the
# document, never a reason to weaken the checks.
#
#   SCHEMATHESIS_EXAMPLES  test cases per operation and phase (default 25)
#   SCHEMATHESIS_SEED      random seed (default: a fixed one, for reproducible CI)
#   SCHEMATHESIS_SERVICES  services to test (default: all five)
#   SCHEMATHESIS_CHECKS    checks to run instead of the default set (e.g. `all`
#                          to explore; the CI set is the default)
# Reports (JUnit, HAR with every request and answer) go to target/schemathesis/.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python-tools.sh
tools_venv

examples="${SCHEMATHESIS_EXAMPLES:-25}"
seed="${SCHEMATHESIS_SEED:-20261123}"
services="${SCHEMATHESIS_SERVICES:-market backoffice risk audit admin}"
checks="${SCHEMATHESIS_CHECKS:-not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance}"

cargo build --quiet --locked -p creditops
bin=target/debug/creditops
data="$(mktemp -d)"
server=""
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  rm -rf "$data"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

declare -A port user
user=([market]=lo-1 [backoffice]=ba-1 [risk]=rc-1 [audit]=ia-1 [admin]=ua-1)
for service in market backoffice risk audit admin; do
  port[$service]="$(free_port)"
done

"$bin" serve --dev --data-dir "$data" \
  --market-addr "127.0.0.1:${port[market]}" \
  --backoffice-addr "127.0.0.1:${port[backoffice]}" \
  --risk-addr "127.0.0.1:${port[risk]}" \
  --audit-addr "127.0.0.1:${port[audit]}" \
  --admin-addr "127.0.0.1:${port[admin]}" \
  >"$data/serve.log" 2>&1 &
server=$!
for service in $services; do
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:${port[$service]}/readyz" >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || { cat "$data/serve.log" >&2; exit 1; }
    sleep 0.2
  done
  curl -fsS "http://127.0.0.1:${port[$service]}/readyz" >/dev/null
done

# Serializers for the exposure import's JSON lines and CSV bodies.
export PYTHONPATH="$PWD/scripts${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=schemathesis_hooks

failed=()
for service in $services; do
  token="$("$bin" token --data-dir "$data" --user "${user[$service]}" --service "$service" --ttl-seconds 3600)"
  echo "== schemathesis: $service as ${user[$service]}"
  # The alert stream never ends by design: there is no response to check.
  if ! "$TOOLS_VENV/bin/schemathesis" run "http://127.0.0.1:${port[$service]}/openapi.json" \
    --header "Authorization: Bearer $token" \
    --checks "$checks" \
    --max-examples "$examples" \
    --seed "$seed" \
    --exclude-path /v1/alerts/stream \
    --request-timeout 30 \
    --workers 1 \
    --warnings off \
    --output-truncate false \
    --report junit,har --report-dir "target/schemathesis/$service"; then
    failed+=("$service")
  fi
done

if ! kill -0 "$server" 2>/dev/null; then
  echo "the server died during the run:" >&2
  tail -50 "$data/serve.log" >&2
  exit 1
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "schemathesis found failures in: ${failed[*]}" >&2
  exit 1
fi
echo "schemathesis: every service conforms to its document"
