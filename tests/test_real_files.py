"""Checkpoints as people have them: shrunken random-weight folders built from the real tokenizer,
processor, chat-template and config files of llava-1.5-7b-hf, llava-v1.6-mistral-7b-hf and
llava-onevision-qwen2-0.5b-ov-hf (tests/realckpt.py). Random weights must be flagged (exit 1),
never crash, never be unevaluable; an unloadable one is exit 3 with one line and a scorecard."""

from __future__ import annotations

import json
import shutil

import pytest
import realckpt

from vibes_eval.adapters.detect import detect
from vibes_eval.cli.main import main
from vibes_eval.records import Status

VISUAL = {"llava": 576, "llava_interleave": 729}  # one view: CLIP 336/14 without CLS, SigLIP 384/14


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    return {f: realckpt.build_hf(f, root / f) for f in realckpt.FAMILIES}, realckpt.write_suite(root / "suite")


@pytest.fixture(scope="module")
def runs(built, tmp_path_factory):
    """`vibes-eval run` on each family: (exit code, scorecard)."""
    folders, suite = built
    out = {}
    for family, ckpt in folders.items():
        dest = tmp_path_factory.mktemp(f"report-{family}")
        code = main(["run", str(ckpt), "--suite", str(suite), "--out", str(dest), "--quiet"])
        out[family] = code, json.loads((dest / "scorecard.json").read_text())
    return out


def _one_line(capsys) -> str:
    """The one `vibes-eval:` line on stderr (the partial-scorecard notice may follow it)."""
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("vibes-eval:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("family", realckpt.FAMILIES)
def test_random_weights_are_flagged_and_every_probe_ran(runs, family):
    code, sc = runs[family]
    assert code == 1, sc["verdict"]
    assert set(sc["verdict"]["diagnoses"]) & {"gibberish", "image_blind", "projector_disconnected"}
    assert [s["probe"] for s in sc["signals"] if s["status"] == Status.ERROR.value] == []
    probes = {s["probe"] for s in sc["signals"]}
    assert {"image_gain", "cross_match", "likelihood", "template_fit", "counterfactual"} <= probes
    assert all(p["answer"] is not None for p in sc["prompts"])


@pytest.mark.parametrize("family", realckpt.FAMILIES)
def test_prompt_and_visual_tokens_are_the_processors(built, family):
    from vibes_eval.adapters.hf.model import HFAdapter, load_image

    folders, suite = built
    ckpt = folders[family]
    adapter = HFAdapter(ckpt, detect(ckpt))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]}]
    assert adapter.render_prompt("What is it?") == adapter.processor.apply_chat_template(msgs, add_generation_prompt=True)
    image = suite.parent / "images" / "0.png"
    enc = adapter.processor(text=[adapter.render_prompt("?")], images=[load_image(image)], return_tensors="pt")
    inserted = int((enc["input_ids"] == adapter.model.config.image_token_id).sum())
    fp = adapter.describe([image, suite.parent / "images" / "1.png"])
    assert fp["visual_tokens"] == inserted == VISUAL.get(family, inserted)
    assert fp["visual_token_budget"].startswith({"llava_interleave": "llava"}.get(family, family).replace("_", "-"))


def test_llava_renders_the_real_chat_template(built):
    from vibes_eval.adapters.hf.model import HFAdapter

    ckpt = built[0]["llava"]
    assert HFAdapter(ckpt, detect(ckpt)).render_prompt("Q?") == "USER: <image>\nQ? ASSISTANT:"


def test_onevision_loads_without_torchvision(built):
    """Its video processor needs torchvision, which no release offers beside the CPU torch 2.13.0."""
    import transformers

    from vibes_eval.adapters.hf.model import HFAdapter

    ckpt = built[0]["llava_onevision"]
    adapter = HFAdapter(ckpt, detect(ckpt))
    if transformers.utils.is_torchvision_available():
        pytest.skip("torchvision is installed: the processor keeps its video processor")
    assert not hasattr(adapter.processor, "video_processor")
    assert adapter.processor.num_image_tokens == 729 and adapter.processor.vision_feature_select_strategy == "full"
    assert "without the video processor" in adapter.describe()["processor"]["notes"][0]


# -- folders saved before processor_config.json existed (transformers < 4.45) -----------------------
@pytest.mark.parametrize("family, repaired", [
    ("llava", ["patch_size=14", "num_additional_image_tokens=1", "vision_feature_select_strategy=default"]),
    ("llava_onevision", ["num_image_tokens=729", "vision_feature_select_strategy=full"]),
    ("llava_interleave", ["patch_size=14", "vision_feature_select_strategy=full"]),  # SigLIP: no CLS, nothing added
])
def test_old_processor_save_is_repaired_and_said(built, tmp_path, capsys, family, repaired):
    folders, suite = built
    ckpt = realckpt.drop_processor_config(shutil.copytree(folders[family], tmp_path / family))
    code = main(["run", str(ckpt), "--suite", str(suite), "--out", str(tmp_path / "out"), "--quiet"])
    line = _one_line(capsys)
    sc = json.loads((tmp_path / "out" / "scorecard.json").read_text())
    assert code == 1 and sc["verdict"]["status"] == "fail"
    assert "processor_config.json" in line and all(r in line for r in repaired)
    assert [r.split(" ")[0] for r in sc["fingerprint"]["processor"]["repaired"]] == repaired
    assert [s["probe"] for s in sc["signals"] if s["status"] == "error"] == []


def test_old_processor_without_a_derivable_patch_size_names_the_field(built, tmp_path):
    from vibes_eval.adapters.hf.processor import _repair
    from vibes_eval.errors import CheckpointError

    class Old:  # what an old save leaves: a processor with no patch_size
        patch_size = None
        num_additional_image_tokens = 0
        vision_feature_select_strategy = "default"

    ckpt = shutil.copytree(built[0]["llava"], tmp_path / "llava")
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["vision_config"]["patch_size"] = None  # nothing to derive it from
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"processor_config.json: patch_size: missing .* add processor_config.json"):
        _repair(Old(), ckpt)


# -- anything the loader raises: exit 3, one line, a scorecard ----------------------------------------
class OddLoaderFailure(Exception):
    """An exception class no loader anticipates."""


@pytest.mark.parametrize("error, words", [
    (OddLoaderFailure("the shards disagree\nsecond line"), ["OddLoaderFailure", "the shards disagree"]),
    (ImportError("LlavaOnevisionVideoProcessor requires the Torchvision library"), ["torchvision", "pip install"]),
    (ModuleNotFoundError("No module named 'sentencepiece'", name="sentencepiece"), ["sentencepiece", "pip install sentencepiece protobuf"]),
])
def test_any_loader_exception_is_exit_3_with_one_line_and_a_scorecard(built, tmp_path, capsys, monkeypatch, error, words):
    import vibes_eval.adapters.hf.model as hf

    def boom(*args, **kwargs):
        raise error

    monkeypatch.setattr(hf.HFAdapter, "__init__", boom)
    folders, suite = built
    code = main(["run", str(folders["llava"]), "--suite", str(suite), "--out", str(tmp_path), "--quiet"])
    line = _one_line(capsys)
    assert code == 3 and all(w in line for w in words) and "second line" not in line
    sc = json.loads((tmp_path / "scorecard.json").read_text())
    assert sc["verdict"]["exit_code"] == 3 and sc["verdict"]["diagnoses"] == ["load_error"]


def test_tokenizer_model_without_sentencepiece_names_the_packages(built, monkeypatch):
    import importlib.util

    from vibes_eval.adapters.failures import tokenizer_packages

    ckpt = built[0]["llava"]
    assert not (ckpt / "tokenizer.json").exists() and tokenizer_packages(ckpt) is None  # installed: loads
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "sentencepiece" else real(name, *a))
    msg = tokenizer_packages(ckpt)
    assert msg.startswith(str(ckpt / "tokenizer.model")) and "pip install sentencepiece protobuf" in msg


def test_serve_turns_a_loader_exception_into_one_line_and_exit_3(built, capsys, monkeypatch):
    import vibes_eval.adapters.hf.model as hf

    def boom(*args, **kwargs):
        raise OddLoaderFailure("unexpected layout")

    monkeypatch.setattr(hf.HFAdapter, "__init__", boom)
    assert main(["serve", str(built[0]["llava"]), "--port", "0"]) == 3
    assert "OddLoaderFailure: unexpected layout" in _one_line(capsys)
