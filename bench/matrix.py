"""The detection matrix as data: every toy variant and the bench checkpoint through `vibes-eval run`.

    python bench/matrix.py OUT.json                 # build the zoo + bench, run each, write the matrix
    python bench/matrix.py --compare A.json B.json  # same exit codes, diagnoses, answers; numbers within 1e-6

Goes through the command line only (the toy build and `run`), so it compares two versions of the
code however their modules are laid out. Volatile fields (times, paths, versions, dates) are dropped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

VARIANTS = ["healthy", "disconnected", "zero-projector", "missing-projector", "image-blind", "gibberish", "wrong-template", "bench"]
VOLATILE = {"created", "seconds", "run_id", "checkpoint", "image_path", "versions", "weights", "elapsed", "path", "rendered_prompt"}


def _strip(x):
    if isinstance(x, dict):
        return {k: _strip(v) for k, v in x.items() if k not in VOLATILE}
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def run_matrix(out: Path) -> dict:
    exe = [sys.executable, "-m", "vibes_eval"]
    tmp = Path(tempfile.mkdtemp(prefix="matrix-"))
    subprocess.run([*exe, "toy", "build", str(tmp / "zoo"), "--variant", "all", "--variant", "bench"],
                   check=True, capture_output=True, timeout=600)
    rows = {}
    for name in VARIANTS:
        rep = tmp / "reports" / name
        p = subprocess.run([*exe, "run", str(tmp / "zoo" / name), "--out", str(rep), "--quiet"],
                           capture_output=True, text=True, timeout=600, env={**os.environ, "COLUMNS": "200"})
        card = json.loads((rep / "scorecard.json").read_text())
        rows[name] = {"exit": p.returncode, "diagnoses": sorted(card["verdict"].get("diagnoses", [])),
                      "verdict": _strip(card["verdict"]), "prompts": _strip(card["prompts"]), "signals": _strip(card["signals"])}
        print(f"{name}: exit {p.returncode} {rows[name]['diagnoses']}", file=sys.stderr)
    out.write_text(json.dumps(rows, indent=1, sort_keys=True))
    return rows


def _diff(a, b, where: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{where}.{k}: only in {'B' if k not in a else 'A'}")
            else:
                _diff(a[k], b[k], f"{where}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{where}: length {len(a)} != {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            _diff(x, y, f"{where}[{i}]", out)
    elif isinstance(a, float) or isinstance(b, float):
        if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or not (
            math.isclose(a, b, abs_tol=1e-6) or (math.isnan(a) and math.isnan(b))):
            out.append(f"{where}: {a!r} != {b!r}")
    elif a != b:
        out.append(f"{where}: {a!r} != {b!r}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--compare", action="store_true")
    args = ap.parse_args()
    if not args.compare:
        run_matrix(args.files[0])
        return 0
    a, b = (json.loads(f.read_text()) for f in args.files[:2])
    problems: list[str] = []
    _diff(a, b, "matrix", problems)
    for p in problems[:50]:
        print(p)
    print(f"{len(a)} checkpoints compared: {'identical (numbers within 1e-6)' if not problems else f'{len(problems)} differences'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
