#!/usr/bin/env bash
# The whole suite as three lanes of pytest side by side, each with its own Ray:
#   - the tests marked `ray` under tests/api, which spend much of their time waiting on
#     Ray's workers, a served service and its subprocesses;
#   - the other tests marked `ray` (service, dashboard, workers, ...): the same kind of
#     waiting, on their own Ray, so that neither half waits behind the other;
#   - beside them, the OpenAPI fuzzing module (generating cases on one core), then every
#     test not marked `ray` (tests/conftest.py refuses a test that uses the session's Ray
#     without the mark, so none slips into this lane).
# Each test's PostgreSQL database is its own, so the lanes share nothing but the CPUs.
# Each lane's output follows the first's. With arguments, one plain pytest run of exactly
# those.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
FUZZ=tests/api/test_schemathesis.py

if [ "$#" -gt 0 ]; then
  exec "$PYTHON" -m pytest "$@"
fi

api_log="$(mktemp)"
plain_log="$(mktemp)"
trap 'rm -f "$api_log" "$plain_log"' EXIT
"$PYTHON" -m pytest -m ray --ignore="$FUZZ" tests/api >"$api_log" 2>&1 &
api_pid=$!
(
  "$PYTHON" -m pytest "$FUZZ"
  fuzz_status=$?
  "$PYTHON" -m pytest -m "not ray" --ignore="$FUZZ"
  plain_status=$?
  exit $((fuzz_status != 0 || plain_status != 0))
) >"$plain_log" 2>&1 &
plain_pid=$!
"$PYTHON" -m pytest -m ray --ignore=tests/api
rest_status=$?
wait "$api_pid"
api_status=$?
wait "$plain_pid"
plain_status=$?
echo "---- the tests marked ray under tests/api (run beside the rest) ----"
cat "$api_log"
echo "---- $FUZZ, then the tests not marked ray (run beside the rest) ----"
cat "$plain_log"
if [ "$rest_status" -ne 0 ] || [ "$api_status" -ne 0 ] || [ "$plain_status" -ne 0 ]; then
  echo "tests failed: the ray lane (not tests/api) exited $rest_status, the ray lane of" \
    "tests/api $api_status, the other lane $plain_status" >&2
  exit 1
fi
