#!/usr/bin/env bash
# Debian's Chromium for the rendered-book check (tests/browser/check_book.py); nothing if it is already there.
set -euo pipefail
command -v chromium >/dev/null 2>&1 && exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq || true  # a stale index still serves the distribution's packages
$sudo apt-get install -y -qq chromium >/dev/null
command -v chromium
