#!/usr/bin/env bash
# The test command: sets up ./.venv, then runs the whole test suite (it trains the toy zoo once, cached).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
exec python -m pytest "$@"
