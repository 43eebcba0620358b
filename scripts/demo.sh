#!/usr/bin/env bash
# The main job: sets up ./.venv, builds the toy zoo (cached) and scores it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
cd "$ROOT"
exec vibes-eval demo "$@"
