#!/usr/bin/env bash
# The GPU benchmark, in one command (fits a 10-minute slot on one H100/H200):
#   1. a venv with a CUDA torch: the machine's own when its python3 already has one (a .pth file
#      makes that interpreter's site-packages visible inside the venv), else `pip install torch`
#      (PyPI's default Linux x86_64 wheel is a CUDA build; do NOT use scripts/setup.sh's pin
#      torch==2.13.0, which resolves to the CPU wheel on this project's dev machines);
#   2. the package (editable, no deps pulled when offline; WHEELS=dir installs carried wheels first);
#   3. a checkpoint with the real llava-1.5-7b shapes and random bf16 weights, initialized on the
#      GPU and saved with save_pretrained to local disk (~14 GB; reused if already there);
#   4. bench/vs_naive.py on it: load + `vibes-eval run --suite suites/shapes.yaml` against the naive
#      loop with the same max_new_tokens (32: the checkpoint decodes exactly that), PAIRS pairs
#      (default 1), then the stage profile. Every figure also lands in $WORK/gpu.json.
# Env: PYTHON (python3), WORK (/tmp/vibes-gpu), VENV ($WORK/venv), PAIRS (1), WHEELS (unset),
#      SIZE (llava-1.5-7b; `bench` for the small one), THREADS (unset: torch's CPU threads),
#      ALLOW_CPU=1 (dry run without a GPU, e.g. `ALLOW_CPU=1 SIZE=bench bench/gpu.sh` on a laptop).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
WORK="${WORK:-/tmp/vibes-gpu}"
VENV="${VENV:-$WORK/venv}"
PAIRS="${PAIRS:-1}"
SIZE="${SIZE:-llava-1.5-7b}"
export ALLOW_CPU="${ALLOW_CPU:-0}"
CKPT="$WORK/$SIZE-random"
export PYTHONUNBUFFERED=1
mkdir -p "$WORK"
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# -- 1. venv + CUDA torch ------------------------------------------------------------------------
t0=$(now)
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  if "$PY" -c 'import os, sys, torch; sys.exit(0 if torch.cuda.is_available() or os.environ["ALLOW_CPU"] == "1" else 1)' 2>/dev/null; then
    # --system-site-packages would expose the *base* interpreter's packages, not those of a venv
    # that $PY may itself live in (e.g. /opt/torch/.venv): add its site-packages explicitly, with
    # addsitedir so that the .pth files in there (editable installs, namespace hooks) work too
    parent=$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    mine=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    echo "import site; site.addsitedir('$parent')" > "$mine/zz-parent-site-packages.pth"
    echo "torch: reusing $PY's ($parent)"
  else
    "$VENV/bin/python" -m pip install --quiet torch
  fi
fi
VPY="$VENV/bin/python"
"$VPY" - <<'EOF'
import os, torch
if torch.cuda.is_available():
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
else:
    assert os.environ["ALLOW_CPU"] == "1", "this venv's torch sees no GPU (ALLOW_CPU=1 for a dry run on CPU)"
    print(f"torch {torch.__version__} on CPU (dry run)")
EOF

# -- 2. the package ----------------------------------------------------------------------------
if [ -n "${WHEELS:-}" ]; then
  "$VPY" -m pip install --quiet --no-index --no-deps "$WHEELS"/*.whl
fi
online=0
"$VPY" -c 'import socket; socket.create_connection(("pypi.org", 443), 3)' 2>/dev/null && online=1
if [ "$online" = 1 ]; then
  "$VPY" -m pip install --quiet -e "$ROOT"
elif ! "$VPY" -m pip install --quiet --no-index --no-deps --no-build-isolation -e "$ROOT" 2>/dev/null; then
  echo "offline and the editable install failed: using PYTHONPATH=$ROOT (python -m vibes_eval)"
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
fi
missing=$("$VPY" - <<'EOF'
import importlib.util
need = {"transformers": "transformers", "accelerate": "accelerate", "safetensors": "safetensors", "tokenizers": "tokenizers",
        "PIL": "pillow", "pydantic": "pydantic", "yaml": "pyyaml", "jinja2": "jinja2", "rich": "rich"}
print(" ".join(pip for mod, pip in need.items() if importlib.util.find_spec(mod) is None))
EOF
)
if [ -n "$missing" ]; then
  echo "missing packages: $missing (offline: carry their wheels and set WHEELS=dir; see bench/README.md)" >&2
  exit 2
fi
"$VPY" -c 'import transformers, vibes_eval; print(f"transformers {transformers.__version__}; vibes_eval from {vibes_eval.__file__}")'
echo "setup: $(since "$t0") s"

# -- 3. the checkpoint -----------------------------------------------------------------------------
if [ ! -f "$CKPT/vibes-eval-toy.json" ]; then
  t0=$(now)
  "$VPY" - "$CKPT" "$SIZE" <<'EOF'
import sys
from pathlib import Path
import torch
from vibes_eval.toy.bench import build_bench
build_bench(Path(sys.argv[1]), size=sys.argv[2], device="cuda" if torch.cuda.is_available() else "cpu")
EOF
  echo "built $CKPT ($(du -sh "$CKPT" | cut -f1)) in $(since "$t0") s"
else
  echo "reusing $CKPT ($(du -sh "$CKPT" | cut -f1))"
fi

# -- 4. naive loop vs vibes-eval run, then the stage profile ---------------------------------------
cd "$ROOT"
nvidia-smi --query-gpu=name,memory.used,memory.total --format=csv,noheader 2>/dev/null || true
"$VPY" bench/vs_naive.py --ckpt "$CKPT" --pairs "$PAIRS" ${THREADS:+--threads "$THREADS"} --json "$WORK/gpu.json"
echo "figures: $WORK/gpu.json"
