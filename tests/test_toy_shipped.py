"""The toy weights shipped in the package: the zoo they give is the trained zoo, bit for bit.

The slow test (`bash scripts/test.sh -m slow`, minutes) retrains the zoo from scratch and checks
the accuracy floors and the demo's verdicts, so the shipped weights stay reproducible.
"""

from __future__ import annotations

import io
import json
import shutil

import pytest

from vibes_eval.toy import shipped
from vibes_eval.toy.progress import Bars
from vibes_eval.toy.variants import FACTORY_VERSION, VARIANTS

FLOORS = {"color": 0.90, "shape": 0.80, "count": 0.95}


def test_the_package_ships_this_factory_versions_weights():
    assert shipped.available(0)
    manifest = json.loads((shipped.folder(0) / "manifest.json").read_text())
    assert manifest["factory_version"] == FACTORY_VERSION and set(manifest["variants_sha256"]) == set(VARIANTS)
    acc = manifest["zoo"]["accuracy_heldout"]["healthy"]
    assert all(acc[k] >= v for k, v in FLOORS.items()), acc


def test_zoo_from_shipped_weights_equals_the_trained_zoo(tmp_path):
    info = shipped.materialize(tmp_path, 0, Bars.quiet())
    manifest = json.loads((shipped.folder(0) / "manifest.json").read_text())
    for name in VARIANTS:
        assert shipped.sha256(tmp_path / name / "model.safetensors") == manifest["variants_sha256"][name], name
    assert info["derived_differ"] == []
    assert info["accuracy_heldout"] == manifest["zoo"]["accuracy_heldout"]
    tokenizers = {(tmp_path / name / "tokenizer.json").read_bytes() for name in VARIANTS}
    assert len(tokenizers) == 1  # one processor for all (training's evaluation leaves no padding behind)
    templates = {name: (tmp_path / name / "chat_template.jinja").read_text() for name in VARIANTS}
    assert [n for n in VARIANTS if templates[n] != templates["healthy"]] == ["wrong-template"]


def test_damaged_shipped_weights_are_named(tmp_path, monkeypatch):
    copy = tmp_path / "weights" / shipped.folder(0).name
    shutil.copytree(shipped.folder(0), copy)
    data = (copy / "healthy.safetensors").read_bytes()
    (copy / "healthy.safetensors").write_bytes(data[: len(data) // 2])
    monkeypatch.setattr(shipped, "WEIGHTS", tmp_path / "weights")
    with pytest.raises(ValueError, match=r"healthy\.safetensors.*damaged"):
        shipped.materialize(tmp_path / "zoo", 0, Bars.quiet())


def test_progress_bars_show_an_eta_and_no_step_lines():
    from rich.console import Console

    buf = io.StringIO()
    with Bars.rich(Console(file=buf, width=140, force_terminal=False)) as bars:
        bars.start("training the toy zoo", 30)
        tick = bars.stage("stage2", 30)
        for step in range(30):
            tick(step + 1, "loss 0.123")
    text = buf.getvalue()
    assert "training the toy zoo" in text and "stage2" in text and "30/30" in text and "ETA" in text
    assert "step 1/" not in text


@pytest.mark.slow
def test_retraining_from_scratch_keeps_the_floors_and_the_verdicts(tmp_path, monkeypatch):
    """Minutes on 2 cores: the recipe still trains a zoo that passes the floors and the demo."""
    from helpers import REPO

    from vibes_eval.cli.demo import EXPECTED
    from vibes_eval.cli.main import main as cli
    from vibes_eval.toy.factory import build_zoo

    monkeypatch.setenv("VIBES_EVAL_CACHE", str(tmp_path / "cache"))
    zoo = build_zoo(0, log=lambda m: None, train=True)
    info = json.loads((zoo / "zoo.json").read_text())
    assert "source" not in info  # trained, not copied
    acc = info["accuracy_heldout"]["healthy"]
    assert all(acc[k] >= v for k, v in FLOORS.items()), acc
    for name in VARIANTS:
        out = tmp_path / "reports" / name
        code = cli(["run", str(zoo / name), "--suite", str(REPO / "suites" / "shapes.yaml"), "--out", str(out), "--quiet"])
        diagnoses = set(json.loads((out / "scorecard.json").read_text())["verdict"]["diagnoses"])
        want = EXPECTED[name]
        assert (code, bool(want & diagnoses) if want else not diagnoses) == (0 if not want else 1, True), (name, code, diagnoses)


def test_training_path_writes_a_zoo_with_progress_bars(tmp_path, monkeypatch):
    """The training pipeline end to end with a few steps per stage (the real recipe is the slow test's)."""
    from rich.console import Console

    from vibes_eval.toy import factory

    tiny = {**factory.RECIPE, "train_scenes": 40, "heldout_scenes": 4, "batch": 8}
    tiny.update({k: 2 for k in tiny if k.endswith("_steps")})
    monkeypatch.setattr(factory, "RECIPE", tiny)
    monkeypatch.setenv("VIBES_EVAL_CACHE", str(tmp_path / "cache"))
    buf = io.StringIO()
    lines = []
    with Bars.rich(Console(file=buf, width=160, force_terminal=False)) as bars:
        zoo = factory.build_zoo(0, log=lines.append, bars=bars, train=True)
    info = json.loads((zoo / "zoo.json").read_text())
    assert "source" not in info and set(info["accuracy_heldout"]) == set(VARIANTS)
    assert all((zoo / name / "model.safetensors").is_file() for name in VARIANTS)
    assert [line.split(":")[0] for line in lines] == list(VARIANTS)  # one result line per variant
    text = buf.getvalue()
    for stage in (*factory.TRAIN_STAGES, "writing the variants", "training the toy zoo"):
        assert stage in text, stage
    assert "ETA" in text and " step " not in text
