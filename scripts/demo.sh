#!/usr/bin/env bash
# `make demo`: see scripts/demo.py.
set -euo pipefail
cd "$(dirname "$0")/.."
rm -rf demo-work
exec python scripts/demo.py
