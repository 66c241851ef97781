#!/bin/sh
# Install Debian's Chromium for the dashboard's browser tests (Playwright drives it through
# executable_path; no browser is ever downloaded by Playwright itself). Idempotent and quiet:
# does nothing when /usr/bin/chromium exists, prints apt's output only when it fails.
set -eu

CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "ensure_chromium: $CHROMIUM is missing and installing it needs root; sudo not found" >&2
    exit 1
fi

LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT
if ! {
    $SUDO apt-get update -qq &&
        $SUDO env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -qq --no-install-recommends chromium
} >"$LOG" 2>&1; then
    cat "$LOG" >&2
    echo "ensure_chromium: installing chromium with apt-get failed" >&2
    exit 1
fi

if [ ! -x "$CHROMIUM" ]; then
    echo "ensure_chromium: apt-get installed chromium but $CHROMIUM is still missing" >&2
    exit 1
fi
