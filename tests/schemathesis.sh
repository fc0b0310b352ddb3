#!/usr/bin/env bash
# Fuzzes the real binary with schemathesis, from its own /openapi.json: every check, once with
# an admin token and once with a viewer's. Run by `make test`; needs `cargo build` first.
#
# schemathesis is pinned and installed from PyPI into a venv under target/ the first time.
# Its coverage phase needs Python 3.12 or later (on 3.11 it stops with an internal
# "AST constructor recursion depth mismatch"); when only an older Python is found, that one
# phase is left out and this says so.
#
#   ST_TIME=SECONDS  time budget per token (default 60)
set -euo pipefail

VERSION=4.32.5
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN="$ROOT/target/debug/muster"
VENV="$ROOT/target/schemathesis-$VERSION"
BUDGET=${ST_TIME:-60}
cd "$ROOT"

python_at_least() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, '"$2"') else 1)' 2>/dev/null; }

pick_python() {
  local c
  for c in python3.13 python3.12 "$(pyenv root 2>/dev/null)"/versions/3.1[2-9]*/bin/python3 python3; do
    if command -v "$c" >/dev/null 2>&1 && python_at_least "$c" 11; then
      echo "$c"
      return
    fi
  done
  echo "schemathesis: no Python 3.11 or later found" >&2
  exit 1
}

if [ ! -x "$VENV/bin/schemathesis" ]; then
  py=$(pick_python)
  echo "schemathesis: installing $VERSION into $VENV (with $("$py" --version))"
  "$py" -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check "schemathesis==$VERSION"
fi
phases=examples,coverage,fuzzing,stateful
if ! python_at_least "$VENV/bin/python" 12; then
  phases=examples,fuzzing,stateful
  echo "schemathesis: Python < 3.12 in $VENV; the coverage phase is left out"
fi

test -x "$BIN" || { echo "schemathesis: $BIN is missing; run cargo build"; exit 1; }
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MUSTER__DATA_DIR="$work/var" MUSTER__HTTP__ADDR="127.0.0.1:$port" \
  "$BIN" --config "$ROOT/config/default.toml" serve >"$work/serve.log" 2>&1 &
pid=$!
cleanup() { kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; echo "schemathesis: muster did not start"; exit 1; }
  sleep 0.2
done

status=0
for token in demo-admin demo-viewer; do
  echo "schemathesis: $token, phases $phases, up to ${BUDGET}s"
  # Run from the scratch dir: schemathesis keeps its own state in ./.schemathesis.
  (cd "$work" && "$VENV/bin/schemathesis" --config-file "$ROOT/tests/schemathesis.toml" \
    run "http://127.0.0.1:$port/openapi.json" \
    -H "Authorization: Bearer $token" --checks all --phases "$phases" \
    --max-examples 10 --max-time "$BUDGET" -w 2 --no-color) || status=1
done
if [ "$status" != 0 ]; then
  echo "schemathesis: failures above; muster's log:"
  tail -n 50 "$work/serve.log"
fi
exit "$status"
