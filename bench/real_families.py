"""One scorecard summary per checkpoint family, from shrunken random-weight folders built out of
the real tokenizer, processor, chat-template and config files (tests/realckpt.py).

    python bench/real_families.py [--out /tmp/real-families]

Every family must come out exit 1 (random weights: gibberish and/or image-blind) with no signal
in `error`; the old-processor folders (no processor_config.json) name their repairs. Prints one
Markdown table row per folder: exit code, diagnoses, the class it ran as, visual tokens of a
200x150 image, reference likelihood, image gain, cross-match, error signals, repaired fields.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))


def build(root: Path) -> tuple[Path, dict[str, list[str]]]:
    import realckpt

    suite = realckpt.write_suite(root / "suite")
    runs: dict[str, list[str]] = {}
    for f in realckpt.FAMILIES:
        runs[f] = [str(realckpt.build_hf(f, root / f))]
        old = realckpt.drop_processor_config(shutil.copytree(root / f, root / f"{f}-old"))
        runs[f"{f} (no processor_config.json)"] = [str(old)]
    tower = realckpt.build_tower(root / "clip")
    for v in ("1.5", "1.6"):
        ckpt = realckpt.build_original(v, root / f"orig{v}")
        runs[f"original llava-v{v} (tokenizer.model only)"] = [str(ckpt), "--vision-tower", str(tower), "--template", "vicuna_v1"]
    ckpt, siglip = realckpt.build_next_repo(root / "nextrepo", root / "siglip")
    runs["LLaVA-NeXT repo OneVision (LlavaQwen, SigLIP, anyres_max_9)"] = [str(ckpt), "--vision-tower", str(siglip)]
    return suite, runs


def row(name: str, code: int, sc: dict) -> str:
    sig = {s["probe"]: s for s in sc["signals"]}
    fp = sc["fingerprint"]
    cm = sig["cross_match"]["evidence"]
    return (f"| {name} | {code} | {', '.join(sc['verdict']['diagnoses'])} | {fp.get('converted_to') or fp.get('architecture')} | "
            f"{fp.get('visual_tokens')} | {sig['likelihood']['evidence']['mean_loglik_nats_per_token']} | "
            f"{sig['image_gain']['evidence']['gain_nats_per_token']} | {cm.get('share')} (p {cm.get('p_value')}) | "
            f"{sum(s['status'] == 'error' for s in sc['signals'])} | {len(fp.get('processor', {}).get('repaired', []))} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=None, help="where to build the folders (default: a temporary folder)")
    args = ap.parse_args()
    root = args.out or Path(tempfile.mkdtemp(prefix="real-families-"))
    suite, runs = build(root)
    print("| folder | exit | diagnoses | ran as | visual tokens | likelihood | image gain | cross-match | errors | repaired |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for i, (name, argv) in enumerate(runs.items()):
        out = root / "reports" / str(i)
        p = subprocess.run([sys.executable, "-m", "vibes_eval", "run", *argv, "--suite", str(suite), "--out", str(out), "--quiet"],
                           capture_output=True, text=True)
        print(row(name, p.returncode, json.loads((out / "scorecard.json").read_text())), flush=True)


if __name__ == "__main__":
    main()
