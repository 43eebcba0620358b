"""The trained toy weights shipped in the package, so a first run needs no training.

`toy/weights/v<FACTORY_VERSION>-seed<seed>/` holds what training produced for that factory
version and seed, exactly (float32, bit for bit):

- `healthy.safetensors`: every tensor of the healthy toy (5.7 MB);
- `image-blind.safetensors`: the image-blind toy's tensors that differ from the healthy ones
  (its LLM and projector; the vision tower is shared), 4.1 MB;
- `manifest.json`: the sha256 of both weight files and of every variant's model.safetensors as
  training wrote them, and the trained zoo's zoo.json (held-out accuracies, timings).

`materialize` writes the zoo from them with the factory's own `write_variants` (the other
variants are derived from the healthy weights as training derives them; the processor is built
by the same code) and checks every variant's weights against the manifest. `export` writes the folder from a trained zoo:

    VIBES_EVAL_TOY_TRAIN=1 vibes-eval toy build /tmp/zoo      # trains into the cache
    python -m vibes_eval.toy.shipped export ~/.cache/vibes-eval/toy/v2-seed0

tests/test_toy_shipped.py checks the shipped zoo against the manifest; its slow test retrains
from scratch and checks the accuracy floors and the detection matrix.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

__all__ = ["WEIGHTS", "available", "export", "materialize"]

WEIGHTS = Path(__file__).with_name("weights")


def folder(seed: int) -> Path:
    from vibes_eval.toy.variants import FACTORY_VERSION

    return WEIGHTS / f"v{FACTORY_VERSION}-seed{seed}"


def available(seed: int) -> bool:
    """Whether the package ships this factory version's weights for `seed`."""
    from vibes_eval.toy.variants import FACTORY_VERSION

    path = folder(seed) / "manifest.json"
    if not path.is_file():
        return False
    manifest = json.loads(path.read_text())
    return manifest.get("factory_version") == FACTORY_VERSION and manifest.get("seed") == seed


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _load_weights(src: Path, manifest: dict) -> tuple[dict, dict]:
    from safetensors.torch import load_file

    for name in ("healthy.safetensors", "image-blind.safetensors"):
        got = sha256(src / name)
        if got != manifest["files"][name]:
            raise ValueError(f"{src / name}: sha256 {got[:12]}... is not the manifest's {manifest['files'][name][:12]}...: "
                             "the package's toy weights are damaged; reinstall, or set VIBES_EVAL_TOY_TRAIN=1 to train them")
    healthy = load_file(src / "healthy.safetensors")
    blind = {**healthy, **load_file(src / "image-blind.safetensors")}
    return healthy, blind


def materialize(root: Path, seed: int, bars) -> dict:
    """Write every variant of the zoo for `seed` under `root` from the shipped weights; the zoo's info."""
    import torch
    from transformers import LlavaForConditionalGeneration

    from vibes_eval.toy import assets
    from vibes_eval.toy.variants import VARIANTS, quiet_transformers, write_variants

    src = folder(seed)
    manifest = json.loads((src / "manifest.json").read_text())
    bars.start("toy zoo from shipped weights", len(VARIANTS) + 2)
    tick = bars.stage("weights and processor", 2)
    quiet_transformers()
    healthy, blind = _load_weights(src, manifest)
    tick(1)
    processor = assets.build_processor(seed)  # as training builds it (a second or two): the same files
    model = LlavaForConditionalGeneration(assets.build_config(processor.tokenizer))  # every weight is replaced
    order = list(model.state_dict())  # the derived variants draw their noise in this order
    healthy, blind = {k: healthy[k] for k in order}, {k: blind[k] for k in order}
    tick(2)
    write_variants(root, model, processor, healthy, blind, seed, bars)
    wrong = {name: want for name, want in manifest["variants_sha256"].items() if sha256(root / name / "model.safetensors") != want}
    if wrong:  # a torch whose initializer or RNG differs derives other weights: still a valid zoo, but say so
        print(f"toy zoo: {', '.join(wrong)} derived with weights other than the trained zoo's (torch {torch.__version__}); "
              "detection figures may differ slightly", file=sys.stderr)
    info = dict(manifest["zoo"])
    info["source"] = f"shipped weights ({src.name}); accuracies measured when they were trained"
    info["derived_differ"] = sorted(wrong)
    return info


def export(zoo: Path, dest: Path | None = None) -> Path:
    """Write the shipped-weights folder from the trained zoo `zoo` (a cache folder with zoo.json)."""
    from safetensors.torch import save_file
    from transformers import LlavaForConditionalGeneration

    from vibes_eval.toy.variants import quiet_transformers

    quiet_transformers()
    info = json.loads((zoo / "zoo.json").read_text())
    out = dest or folder(info["seed"])
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)

    def state(variant: str) -> dict:  # the model's own tensor names (the files hold the library's saved names)
        model = LlavaForConditionalGeneration.from_pretrained(zoo / variant, local_files_only=True)
        return {k: v.contiguous() for k, v in model.state_dict().items()}

    healthy, blind = state("healthy"), state("image-blind")
    differ = {k: v for k, v in blind.items() if not (k in healthy and torch_equal(healthy[k], v))}
    save_file(healthy, out / "healthy.safetensors", metadata={"format": "pt"})
    save_file(differ, out / "image-blind.safetensors", metadata={"format": "pt"})
    manifest = {
        "factory_version": info["factory_version"],
        "seed": info["seed"],
        "files": {n: sha256(out / n) for n in ("healthy.safetensors", "image-blind.safetensors")},
        "variants_sha256": {v: sha256(zoo / v / "model.safetensors") for v in info["variants"]},
        "zoo": info,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def torch_equal(a, b) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and bool((a == b).all())


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "export":
        sys.exit("usage: python -m vibes_eval.toy.shipped export ZOO_FOLDER")
    print(export(Path(sys.argv[2])))
