#!/usr/bin/env bash
# The migration example end to end: start the stand-in endpoint (`advisor serve` on 127.0.0.1:8011),
# assess the task against it and the local rungs, stop the server. Arguments go to `advisor assess`.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${BIN:-.venv/bin}
PORT=8011
export MIGRATION_API_KEY=${MIGRATION_API_KEY:-stand-in-key-for-the-example}
"$BIN/advisor" serve examples/migration/stand_in.yaml --port "$PORT" --api-key-env MIGRATION_API_KEY \
    2> examples/migration/.stand_in.log &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT
"$BIN/python" - "$PORT" "$server" <<'PY'
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
for _ in range(600):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
            sys.exit(0)
    except OSError:
        try:
            os.kill(pid, 0)
        except OSError:
            sys.exit("the stand-in server exited; see examples/migration/.stand_in.log")
        time.sleep(0.5)
sys.exit("the stand-in server did not start in 5 minutes; see examples/migration/.stand_in.log")
PY
"$BIN/advisor" assess examples/migration/task.yaml "$@"
