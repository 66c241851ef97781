#!/usr/bin/env bash
# The whole suite as two pytest processes side by side: the OpenAPI fuzzing module, which
# spends its time generating cases on one core, and everything else, which spends much of
# its time waiting on Ray, subprocesses and a browser. Each has its own Ray; the fuzzing
# output follows the rest's. With arguments, one plain pytest run of exactly those.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
FUZZ=tests/api/test_schemathesis.py

if [ "$#" -gt 0 ]; then
  exec "$PYTHON" -m pytest "$@"
fi

fuzz_log="$(mktemp)"
trap 'rm -f "$fuzz_log"' EXIT
"$PYTHON" -m pytest "$FUZZ" >"$fuzz_log" 2>&1 &
fuzz_pid=$!
"$PYTHON" -m pytest --ignore="$FUZZ"
rest_status=$?
wait "$fuzz_pid"
fuzz_status=$?
echo "---- $FUZZ (run beside the rest) ----"
cat "$fuzz_log"
if [ "$rest_status" -ne 0 ] || [ "$fuzz_status" -ne 0 ]; then
  echo "tests failed: the rest exited $rest_status, the fuzzing $fuzz_status" >&2
  exit 1
fi
