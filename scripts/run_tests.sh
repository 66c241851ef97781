#!/usr/bin/env bash
# The whole suite as two lanes of pytest side by side, each with its own Ray:
#   - the tests marked `ray`, which spend much of their time waiting on Ray's workers,
#     subprocesses and a browser;
#   - beside them, the OpenAPI fuzzing module (generating cases on one core), then every
#     test not marked `ray` (tests/conftest.py refuses a test that uses the session's Ray
#     without the mark, so none slips into this lane).
# Each test's PostgreSQL database is its own, so the lanes share nothing but the CPUs.
# The second lane's output follows the first's. With arguments, one plain pytest run of
# exactly those.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
FUZZ=tests/api/test_schemathesis.py

if [ "$#" -gt 0 ]; then
  exec "$PYTHON" -m pytest "$@"
fi

beside_log="$(mktemp)"
trap 'rm -f "$beside_log"' EXIT
(
  "$PYTHON" -m pytest "$FUZZ"
  fuzz_status=$?
  "$PYTHON" -m pytest -m "not ray" --ignore="$FUZZ"
  plain_status=$?
  exit $((fuzz_status != 0 || plain_status != 0))
) >"$beside_log" 2>&1 &
beside_pid=$!
"$PYTHON" -m pytest -m ray --ignore="$FUZZ"
ray_status=$?
wait "$beside_pid"
beside_status=$?
echo "---- $FUZZ, then the tests not marked ray (run beside the rest) ----"
cat "$beside_log"
if [ "$ray_status" -ne 0 ] || [ "$beside_status" -ne 0 ]; then
  echo "tests failed: the ray lane exited $ray_status, the other lane $beside_status" >&2
  exit 1
fi
