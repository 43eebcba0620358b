#!/usr/bin/env bash
# The test command: sets up ./.venv, lints (ruff, configured in pyproject.toml), then runs the whole
# test suite (it writes the toy zoo once, cached). A lint failure fails the command.
set -euo pipefail
# the tracker tests read W&B, MLflow and TensorBoard back with the real libraries (optional extras, not in the base install)
export VIBES_EVAL_EXTRAS="${VIBES_EVAL_EXTRAS:-test,trackers}"
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
ruff check .
exec python -m pytest "$@"
