#!/usr/bin/env bash
# The browser the governance page's test drives: Debian's Chromium, driven by Playwright.
#
#   bash infra/install-browser.sh            # as root, or with sudo available
#
# Idempotent: installs `chromium` and `chromium-driver` with apt-get only when missing, and the
# `playwright` Python package into .venv only when missing. It never runs `playwright install`
# (no browser download): the test launches /usr/bin/chromium through `executable_path`.
# Without this, the `browser` tests fail and say so; they never skip.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        echo "install-browser: need root (or sudo) for apt-get install chromium" >&2
        exit 1
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver
fi

if ! "$PYTHON" -c "import playwright" >/dev/null 2>&1; then
    "$PYTHON" -m pip install --quiet "playwright>=1.50"
fi

echo "browser: $(chromium --version 2>/dev/null | head -n 1) at $(command -v chromium)"
"$PYTHON" -c "import importlib.metadata as m; print('playwright', m.version('playwright'))"
