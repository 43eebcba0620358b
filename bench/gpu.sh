#!/usr/bin/env bash
# The GPU benchmark, in one command (fits a 10-minute slot on one H100/H200):
#   1. a python with a CUDA torch: the machine's own python3 when it has one, else a venv with
#      `pip install torch` (PyPI's default Linux x86_64 wheel is a CUDA build; do NOT use
#      scripts/setup.sh's pin torch==2.13.0, which resolves to the CPU wheel on the dev machines);
#   2. the package (PYTHONPATH on the checkout when offline; WHEELS=dir installs carried wheels
#      into $WORK/site); DEMO=1 also runs `vibes-eval demo` and bench/prefix_check.py here;
#   3. a checkpoint with the real llava-1.5-7b shapes and random bf16 weights, initialized on the
#      GPU and saved with save_pretrained to local disk (~14 GB; reused if already there);
#   4. bench/vs_naive.py on it: load + `vibes-eval run --suite suites/shapes.yaml` against the naive
#      loop with the same max_new_tokens (32: the checkpoint decodes exactly that), PAIRS pairs
#      (default 1), then the stage profile. Every figure also lands in $WORK/gpu.json.
# Env: PYTHON (python3), WORK (/tmp/vibes-gpu), VENV ($WORK/venv), PAIRS (1), WHEELS (unset), DEMO (0),
#      EXTRA ("": more --ckpt specs for vs_naive on this device, e.g. "bench bench:bench-512"),
#      SIZE (llava-1.5-7b; `bench` for the small one), THREADS (unset: torch's CPU threads),
#      ALLOW_CPU=1 (dry run without a GPU, e.g. `ALLOW_CPU=1 SIZE=bench bench/gpu.sh` on a laptop),
#      SWEEP=N (0: off): then bench/many.py on N copies of the checkpoint, sequential vs overlapped
#      (and `--devices auto` when there are 2+ GPUs), page cache dropped before each run; needs
#      N+1 times the checkpoint on disk (a 7B: 14 GB each), so SWEEP=2 on a 64 GB disk.
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

# -- 1. a python with CUDA torch -------------------------------------------------------------------
t0=$(now)
if "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null || [ "$ALLOW_CPU" = 1 ]; then
  VPY="$PY"   # the machine's own torch (e.g. a GPU image's /opt/torch/.venv): no venv, nothing downloaded
elif [ -x "$VENV/bin/python" ]; then
  VPY="$VENV/bin/python"
else
  "$PY" -m venv "$VENV"
  # PyPI's default Linux x86_64 torch wheel is a CUDA build (NOT scripts/setup.sh's CPU pin)
  "$VENV/bin/python" -m pip install --quiet torch
  VPY="$VENV/bin/python"
fi
"$VPY" - <<'EOF2'
import os, torch
if torch.cuda.is_available():
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
else:
    assert os.environ["ALLOW_CPU"] == "1", "this python's torch sees no GPU (ALLOW_CPU=1 for a dry run on CPU)"
    print(f"torch {torch.__version__} on CPU (dry run)")
EOF2

# -- 2. the package ----------------------------------------------------------------------------
# WHEELS=dir: wheels carried to an offline machine (pydantic, ...), installed into $WORK/site
if [ -n "${WHEELS:-}" ]; then
  "$VPY" -m pip install --quiet --no-index --no-deps --no-compile --upgrade --target "$WORK/site" "$WHEELS"/*.whl
  export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
fi
if [ "$VPY" != "$PY" ] && "$VPY" -c 'import socket; socket.create_connection(("pypi.org", 443), 3)' 2>/dev/null; then
  "$VPY" -m pip install --quiet -e "$ROOT"
else
  export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"   # python -m vibes_eval from the checkout
fi
missing=$("$VPY" - <<'EOF2'
import importlib.util
need = {"transformers": "transformers", "accelerate": "accelerate", "safetensors": "safetensors", "tokenizers": "tokenizers",
        "PIL": "pillow", "pydantic": "pydantic", "yaml": "pyyaml", "jinja2": "jinja2", "rich": "rich"}
print(" ".join(pip for mod, pip in need.items() if importlib.util.find_spec(mod) is None))
EOF2
)
if [ -n "$missing" ]; then
  echo "missing packages: $missing (offline: carry their wheels and set WHEELS=dir; see bench/README.md)" >&2
  exit 2
fi
"$VPY" -c 'import importlib.util as u, transformers, vibes_eval; w = bool(u.find_spec("wordfreq")); print(f"transformers {transformers.__version__}; vibes_eval from {vibes_eval.__file__}; wordfreq {w}")'
echo "setup: $(since "$t0") s"

# -- 2b. optional: the toy zoo through the gate on this device (DEMO=1; needs the zoo in $VIBES_EVAL_CACHE,
#        else it trains it first), and the shared-prefix path against the plain one in bfloat16
if [ "${DEMO:-0}" = 1 ]; then
  t0=$(now)
  "$VPY" -m vibes_eval demo --out "$WORK/demo" || echo "demo: exit $?"
  zoo_healthy="$WORK/demo/zoo/healthy"
  [ -d "$zoo_healthy" ] && "$VPY" "$ROOT/bench/prefix_check.py" "$zoo_healthy"
  echo "demo + prefix check: $(since "$t0") s"
fi

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
extra=()
for spec in ${EXTRA:-}; do extra+=(--ckpt "$spec"); done
"$VPY" bench/vs_naive.py --ckpt "$CKPT" "${extra[@]}" --pairs "$PAIRS" ${THREADS:+--threads "$THREADS"} --json "$WORK/gpu.json"
echo "figures: $WORK/gpu.json"

# -- 5. optional: a sweep of SWEEP copies, sequential vs overlapped (vs one worker per GPU) ---------
if [ "${SWEEP:-0}" -gt 0 ]; then
  gpus=$("$VPY" -c 'import torch; print(torch.cuda.device_count() if torch.cuda.is_available() else 0)')
  sweep=(--base "$CKPT" --counts "$SWEEP" --repeats 1)
  if [ "$gpus" -gt 0 ]; then sweep+=(--device cuda); fi
  if [ "$gpus" -gt 1 ]; then sweep+=(--devices "$(seq -s, -f 'cuda:%g' 0 $((gpus - 1)))"); fi
  TMPDIR="$WORK" "$VPY" bench/many.py "${sweep[@]}" ${THREADS:+--threads "$THREADS"} --json "$WORK/sweep.json"
  echo "sweep figures: $WORK/sweep.json"
fi
