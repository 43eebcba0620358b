#!/usr/bin/env bash
# The test command: sets up ./.venv, lints (ruff, configured in pyproject.toml), then runs the whole
# test suite (it writes the toy zoo once, cached). A lint failure fails the command.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
ruff check .
exec python -m pytest "$@"
