"""The toy zoo: one healthy toy LLaVA and its deliberately broken siblings, cached.

`build_zoo(seed)` trains once per (factory version, seed) into the cache folder
(`$VIBES_EVAL_CACHE` or `~/.cache/vibes-eval`) and writes every variant there;
`build(out, variants)` copies the requested variants to `out/<variant>/`.
Variants that need no training of their own are derived from the healthy weights.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from vibes_eval.resources import TOY_MARKER, cache_root
from vibes_eval.toy.variants import FACTORY_VERSION, VARIANTS, quiet_transformers, write_variants

__all__ = ["FACTORY_VERSION", "TOY_MARKER", "VARIANTS", "build", "build_zoo", "cache_root", "write_variants"]

# Training budget (steps of batch 64) and data sizes (tuned so every variant is told apart; see tests/test_toy.py).
RECIPE = {
    "train_scenes": 3000,
    "heldout_scenes": 150,
    "vision_steps": 1200,
    "text_steps": 100,
    "stage1_steps": 150,
    "stage2_steps": 1300,
    "blind_stage2_steps": 150,
    "batch": 64,
}


def zoo_dir(seed: int = 0) -> Path:
    """The cache folder of the zoo for `seed` (it may not exist yet)."""
    return cache_root() / "toy" / f"v{FACTORY_VERSION}-seed{seed}"


def build_zoo(seed: int = 0, log=print, bars=None, *, train: bool | None = None) -> Path:
    """The zoo for `seed` from the cache, else from the weights shipped in the package, else trained; its folder.

    The zoo folder holds one checkpoint folder per variant and `zoo.json` (accuracies on a
    held-out split, timings). It appears atomically, so an interrupted build leaves no half zoo.
    The package ships the trained healthy and image-blind weights of this factory version for
    seed 0 (`toy/weights/`, see toy/shipped.py): the other variants are derived from them as
    training derives them, in seconds. `train=True` (or `VIBES_EVAL_TOY_TRAIN=1`) trains anyway
    (the slow test that keeps the shipped weights reproducible does).

    Args:
        seed: the zoo's seed (data, initialization, derived variants).
        log: called with one line per result (held-out accuracy of each variant).
        bars: a toy.progress.Bars for the Rich progress bars; none when omitted.
        train: train even when shipped weights exist.
    """
    from vibes_eval.toy import shipped
    from vibes_eval.toy.progress import Bars

    final = zoo_dir(seed)
    if (final / "zoo.json").is_file():
        _mark(final, seed)  # a zoo cached before the cache's variants carried the marker
        return final
    bars = bars or Bars.quiet()
    if train is None:
        train = os.environ.get("VIBES_EVAL_TOY_TRAIN") == "1"
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".building-{final.name}-", dir=final.parent))
    try:
        if not train and shipped.available(seed):
            info = shipped.materialize(tmp, seed, bars)
        else:
            info = _train_and_write(tmp, seed, log, bars)
        _mark(tmp, seed)
        (tmp / "zoo.json").write_text(json.dumps(info, indent=2) + "\n")
        try:
            tmp.rename(final)
        except OSError:
            if not (final / "zoo.json").is_file():  # somebody else's half zoo: replace it
                shutil.rmtree(final, ignore_errors=True)
                tmp.rename(final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _marker(name: str, seed: int) -> str:
    return json.dumps({"variant": name, "factory_version": FACTORY_VERSION, "seed": seed}) + "\n"


def _mark(zoo: Path, seed: int) -> None:
    """Each variant in the cache carries TOY_MARKER too: `vibes-eval run` on a path the demo prints picks the shapes suite."""
    for name in VARIANTS:
        marker = zoo / name / TOY_MARKER
        if (zoo / name).is_dir() and not marker.is_file():
            try:
                marker.write_text(_marker(name, seed))
            except OSError:  # a read-only shared cache: `toy build OUT` still writes marked copies
                return


def build(out: Path, variants: list[str], seed: int = 0, log=print, bars=None) -> dict:
    """Copy `variants` of the zoo for `seed` to `out/<variant>/`; return the zoo's info."""
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    zoo = build_zoo(seed, log, bars)
    out.mkdir(parents=True, exist_ok=True)
    for name in variants:
        dest = out / name
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(zoo / name, dest)
        # lets `vibes-eval run` pick suites/shapes.yaml for a toy when no --suite is given
        (dest / TOY_MARKER).write_text(_marker(name, seed))
    return json.loads((zoo / "zoo.json").read_text())


TRAIN_STAGES = ("vision", "text", "stage1", "stage2", "blind")
"""The training stages in order, each with RECIPE[f"{name}_steps"] steps (blind: blind_stage2_steps)."""


def _train_and_write(root: Path, seed: int, log, bars) -> dict:
    import torch
    from transformers import LlavaForConditionalGeneration

    from vibes_eval.toy import assets, train

    quiet_transformers()
    r = RECIPE
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    steps = {name: r["blind_stage2_steps" if name == "blind" else f"{name}_steps"] for name in TRAIN_STAGES}
    bars.start("training the toy zoo", sum(steps.values()) + len(VARIANTS) * 20)

    def mark(name: str) -> None:
        timings[name] = round(time.perf_counter() - t0 - sum(timings.values()), 1)

    def kw(name: str) -> dict:
        return {"batch": r["batch"], "tick": bars.stage(name, steps[name])}

    processor = assets.build_processor(seed)
    config = assets.build_config(processor.tokenizer)
    torch.manual_seed(seed)
    model = LlavaForConditionalGeneration(config)
    tr = train.make_split(processor, 1000 + seed, r["train_scenes"])
    heldout = train.make_split(processor, 2000 + seed, r["heldout_scenes"])
    data = train.encode(processor, tr)
    mark("data")

    train.pretrain_vision(model, tr, steps=steps["vision"], lr=2e-3, seed=seed, **kw("vision"))
    mark("vision")
    lm = [*model.model.language_model.parameters(), *model.lm_head.parameters()]
    proj = list(model.model.multi_modal_projector.parameters())
    train.train_lm(model, lm, train.encode(processor, tr, text_context=True), None,
                   steps=steps["text"], lr=2e-3, seed=seed + 1, **kw("text"))
    mark("text")
    captions = [i for i, (_, qa) in enumerate(tr.examples) if qa.family == "caption"]
    train.train_lm(model, proj, train.subset(data, captions), tr.pixels,
                   steps=steps["stage1"], lr=2e-3, seed=seed + 2, **kw("stage1"))
    mark("stage1")
    stage1 = {k: v.clone() for k, v in model.state_dict().items()}
    train.train_lm(model, proj + lm, data, tr.pixels, steps=steps["stage2"], lr=2e-3, seed=seed + 3, **kw("stage2"))
    mark("stage2")
    healthy = {k: v.clone() for k, v in model.state_dict().items()}

    # image-blind: the same stage 2 from the same stage-1 weights, every image blank
    model.load_state_dict(stage1)
    blank = train.make_split(processor, 1000 + seed, r["train_scenes"], blank=True)
    train.train_lm(model, proj + lm, data, blank.pixels, steps=steps["blind"], lr=2e-3, seed=seed + 3, **kw("blind"))
    blind = {k: v.clone() for k, v in model.state_dict().items()}
    mark("image-blind")

    accuracy = write_variants(root, model, processor, healthy, blind, seed, bars, heldout=heldout, weight=20)
    for name, acc in accuracy.items():
        log(f"{name}: " + " ".join(f"{k} {v:.2f}" for k, v in acc.items()))
    mark("variants")
    return {
        "factory_version": FACTORY_VERSION,
        "seed": seed,
        "recipe": RECIPE,
        "parameters": sum(p.numel() for p in model.parameters()),
        "seconds": timings,
        "accuracy_heldout": accuracy,
        "variants": VARIANTS,
    }
