#!/usr/bin/env bash
# Creates ./.venv (once) and installs vibes-eval into it. Sourced by demo.sh and test.sh.
# torch is pinned to 2.13.0 and installed first: that is the CPU wheel; an unpinned torch pulls a multi-GB CUDA build.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VIBES_EVAL_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
STAMP="$VENV/.vibes-eval-installed"
# the extras: test (pytest, ruff, playwright); scripts/test.sh adds trackers (wandb, mlflow-skinny, tensorboard: ~33 s, ~225 MiB)
EXTRAS="${VIBES_EVAL_EXTRAS:-test}"
WANT="$( (cat "$ROOT/pyproject.toml"; echo "$EXTRAS") | sha256sum | cut -c1-16)"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$EXTRAS]"
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"
