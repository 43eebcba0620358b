"""LLaVA-NeXT repository outputs (LLaVA-VL/LLaVA-NeXT: lmms-lab's OneVision and NeXT-Interleave):
LlavaQwenForCausalLM + mm_* keys, SigLIP tower, anyres_max_9, "(1x1),...,(6x6)" pinpoints. Loaded
like the original LLaVA format and converted in memory to LlavaOnevisionForConditionalGeneration;
what does not map is exit 3 naming it."""

from __future__ import annotations

import json

import pytest
import realckpt

from vibes_eval.adapters.detect import detect
from vibes_eval.budget.checkpoint import budget_for_checkpoint
from vibes_eval.cli.main import main


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("next-repo")
    ckpt, tower = realckpt.build_next_repo(root / "llava-onevision-qwen2-0.5b-ov", root / "siglip-so400m-patch14-384")
    return ckpt, tower, realckpt.write_suite(root / "suite")


@pytest.fixture(scope="module")
def adapter(folder):
    from vibes_eval.adapters.llava_repo.model import LlavaRepoAdapter

    ckpt, tower, _ = folder
    return LlavaRepoAdapter(ckpt, detect(ckpt), vision_tower=tower)


def test_converted_to_onevision_with_every_weight_mapped(adapter, folder):
    cfg = adapter.model.config
    assert type(adapter.model).__name__ == "LlavaOnevisionForConditionalGeneration"
    assert type(cfg.text_config).__name__ == "Qwen2Config" and cfg.vision_config.model_type == "siglip_vision_model"
    assert (cfg.vision_aspect_ratio, cfg.vision_feature_select_strategy, cfg.vision_feature_layer) == ("anyres_max_9", "full", -2)
    assert len(cfg.image_grid_pinpoints) == 36 and [2304, 2304] in cfg.image_grid_pinpoints
    assert adapter.loading_info["missing_keys"] == [] and adapter.loading_info["unexpected_keys"] == []
    assert (adapter.template_name, adapter.options["architecture"]) == ("qwen_1_5", "LlavaQwenForCausalLM")
    # the class tokenizer_config.json names, not the LLM's (AutoTokenizer with a Qwen2Config picks Qwen2's)
    assert type(adapter.processor.tokenizer).__name__ == "LlamaTokenizer"


def test_visual_tokens_equal_the_budget_arithmetic(adapter, folder):
    ckpt, _, suite = folder
    images = sorted((suite.parent / "images").glob("*.png"))
    fp = adapter.describe(images[:2])
    from PIL import Image

    with Image.open(images[0]) as im:
        size = im.size
    assert fp["converted_to"] == "LlavaOnevisionForConditionalGeneration"
    assert fp["visual_tokens"] == budget_for_checkpoint(ckpt).tokens(*size)


def test_run_flags_random_weights_with_every_probe(folder, tmp_path, capsys):
    ckpt, tower, suite = folder
    code = main(["run", str(ckpt), "--vision-tower", str(tower), "--suite", str(suite), "--out", str(tmp_path), "--quiet"])
    sc = json.loads((tmp_path / "scorecard.json").read_text())
    assert code == 1 and set(sc["verdict"]["diagnoses"]) & {"gibberish", "image_blind", "projector_disconnected"}
    assert [s["probe"] for s in sc["signals"] if s["status"] == "error"] == []
    assert {"image_gain", "cross_match", "likelihood", "template_fit"} <= {s["probe"] for s in sc["signals"]}
    assert "qwen_1_5" in capsys.readouterr().err


@pytest.mark.parametrize("change, words", [
    ({"mm_resampler_type": "spatial_pool"}, ["mm_resampler_type: spatial_pool is not supported"]),
    ({"image_aspect_ratio": "anyres_max_9", "mm_patch_merge_type": "flat"}, ["mm_patch_merge_type: flat"]),
    ({"image_grid_pinpoints": "1x1 to 6x6"}, ["image_grid_pinpoints: cannot read"]),
    ({"image_aspect_ratio": "crop"}, ["image_aspect_ratio: crop is not supported"]),
])
def test_what_does_not_map_is_exit_3_naming_it(folder, tmp_path, capsys, change, words):
    import shutil

    ckpt, tower, suite = folder
    copy = shutil.copytree(ckpt, tmp_path / "ckpt")
    cfg = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**cfg, **change}))
    code = main(["run", str(copy), "--vision-tower", str(tower), "--suite", str(suite), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 3 and "Traceback" not in err and all(w in err for w in words), err
    assert json.loads((tmp_path / "out" / "scorecard.json").read_text())["verdict"]["diagnoses"] == ["load_error"]


# -- the toy in that layout (`vibes-eval toy build OUT --format llava-next-repo`) -----------------------
TOY_TEMPLATE = "llava-1.5-hf"  # what the toy was trained on


@pytest.fixture(scope="module")
def toy(zoo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("toy-next-repo")
    assert main(["toy", "build", str(out), "--variant", "healthy", "--format", "llava-next-repo"]) == 0
    return out / "healthy"


def test_toy_build_writes_the_next_repo_layout(toy):
    from vibes_eval.resources import TOY_MARKER

    for layout, aspect in (("pad", "pad"), ("anyres_max", "anyres_max_9")):
        cfg = json.loads((toy / layout / "config.json").read_text())
        assert cfg["architectures"] == ["LlavaQwenForCausalLM"] and cfg["image_aspect_ratio"] == aspect
        assert {"mm_spatial_pool_mode", "mm_spatial_pool_stride", "mm_newline_position"} <= set(cfg)
        assert json.loads((toy / layout / TOY_MARKER).read_text())["format"] == "llava-next-repo"
        assert detect(toy / layout).loader == "llava_repo"
    assert json.loads((toy / "anyres_max" / "config.json").read_text())["image_grid_pinpoints"] == "(1x1),...,(2x2)"


def test_toy_pad_layout_answers_like_the_hf_toy(toy, zoo_dir):
    from vibes_eval.adapters.hf.model import HFAdapter
    from vibes_eval.adapters.llava_repo.model import LlavaRepoAdapter
    from vibes_eval.records import Request
    from vibes_eval.suite.schema import load_suite

    suite = load_suite(realckpt.REF.parents[2] / "suites" / "shapes.yaml")
    reqs = [Request(prompt_id=p.id, image=p.path, question=p.question, max_new_tokens=suite.max_new_tokens(p)) for p in suite.prompts[:5]]
    native = HFAdapter(zoo_dir / "healthy", detect(zoo_dir / "healthy"))
    repo = LlavaRepoAdapter(toy / "pad", detect(toy / "pad"), template=TOY_TEMPLATE)
    assert type(repo.model.config.text_config).__name__ == "Qwen2Config"
    assert repo.loading_info["missing_keys"] == [] and repo.loading_info["unexpected_keys"] == []
    assert [r.text for r in repo.generate(reqs)] == [r.text for r in native.generate(reqs)]


def test_toy_anyres_max_layout_is_onevision_and_every_probe_runs(toy, tmp_path):
    out = tmp_path / "out"
    code = main(["run", str(toy / "anyres_max"), "--template", TOY_TEMPLATE, "--out", str(out), "--quiet"])
    sc = json.loads((out / "scorecard.json").read_text())
    assert code in (0, 1) and sc["fingerprint"]["converted_to"] == "LlavaOnevisionForConditionalGeneration"
    assert [s["probe"] for s in sc["signals"] if s["status"] == "error"] == []
    assert sc["fingerprint"]["original_format"]["image_aspect_ratio"] == "anyres_max_9"


def test_interleave_setting_pad_is_plain_llava_with_729_tokens(folder, tmp_path):
    """lmms-lab's NeXT-Interleave: the same LlavaQwen + SigLIP folder with image_aspect_ratio pad."""
    import shutil

    from vibes_eval.adapters.llava_repo.model import LlavaRepoAdapter

    ckpt, tower, suite = folder
    copy = shutil.copytree(ckpt, tmp_path / "interleave")
    cfg = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**cfg, "image_aspect_ratio": "pad", "image_grid_pinpoints": None}))
    (copy / "model.safetensors").unlink()  # no image_newline in a pad checkpoint: keep everything else
    from safetensors.torch import load_file, save_file

    state = {k: v for k, v in load_file(ckpt / "model.safetensors").items() if k != "model.image_newline"}
    save_file(state, str(copy / "model.safetensors"), metadata={"format": "pt"})
    adapter = LlavaRepoAdapter(copy, detect(copy), vision_tower=tower)
    assert type(adapter.model).__name__ == "LlavaForConditionalGeneration"
    assert adapter.loading_info["missing_keys"] == [] and adapter.loading_info["unexpected_keys"] == []
    assert adapter._pad_color == (127, 127, 127)  # SigLIP's mean 0.5, as the original pads
    images = sorted((suite.parent / "images").glob("*.png"))
    assert adapter.describe(images[:2])["visual_tokens"] == 729 == budget_for_checkpoint(copy).tokens(200, 150)
