"""The bench checkpoint (vibes_eval.toy.bench): llava-1.5's 576 visual tokens, a fixed decode
length, loadable offline by the Auto classes, and no trace in the toy zoo's cache."""

from __future__ import annotations

import json

import pytest
from helpers import SHAPES

IMAGE = SHAPES.parent / "images" / "shapes" / "describe-two.png"
NEW_TOKENS = 8  # small: the test checks the count, not the speed


@pytest.fixture(scope="module")
def bench_ckpt(tmp_path_factory):
    from vibes_eval.toy.bench import build_bench

    cache = tmp_path_factory.mktemp("cache") / "vibes-eval"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("VIBES_EVAL_CACHE", str(cache))
        ckpt = build_bench(tmp_path_factory.mktemp("bench") / "bench", new_tokens=NEW_TOKENS)
    assert not cache.exists()  # random weights, no training: the zoo cache stays untouched
    return ckpt


@pytest.fixture(scope="module")
def loaded(bench_ckpt):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(bench_ckpt, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(bench_ckpt, local_files_only=True).eval()
    return processor, model


def test_files_and_marker(bench_ckpt):
    gen = json.loads((bench_ckpt / "generation_config.json").read_text())
    assert gen["min_new_tokens"] == gen["max_new_tokens"] == NEW_TOKENS
    cfg = json.loads((bench_ckpt / "config.json").read_text())
    assert cfg["architectures"] == ["LlavaForConditionalGeneration"]
    assert (cfg["vision_config"]["image_size"], cfg["vision_config"]["patch_size"]) == (336, 14)
    assert (cfg["vision_feature_layer"], cfg["vision_feature_select_strategy"]) == (-2, "default")
    marker = json.loads((bench_ckpt / "vibes-eval-toy.json").read_text())
    assert marker["variant"] == "bench" and marker["random_weights"] is True


def test_576_image_tokens_and_exact_decode_length(loaded):
    import torch
    from PIL import Image

    processor, model = loaded
    assert type(model).__name__ == "LlavaForConditionalGeneration"
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe the image."}]}]
    prompt = processor.apply_chat_template(msgs, add_generation_prompt=True)
    assert prompt == "USER: <image>\nDescribe the image. ASSISTANT:"
    with Image.open(IMAGE) as im:
        enc = processor(images=im.convert("RGB"), text=prompt, return_tensors="pt")
    assert tuple(enc["pixel_values"].shape) == (1, 3, 336, 336)
    assert int((enc["input_ids"] == model.config.image_token_id).sum()) == 576
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=False)  # max_new_tokens from generation_config
    assert out.shape[1] - enc["input_ids"].shape[1] == NEW_TOKENS


def test_runner_sees_it_as_a_toy_hf_checkpoint(bench_ckpt):
    from vibes_eval.adapters.detect import detect
    from vibes_eval.resources import default_suite

    assert detect(bench_ckpt).loader == "hf"
    assert default_suite(bench_ckpt).name == "shapes.yaml"  # the toy tokenizer only knows the shapes world


def test_unknown_size(tmp_path):
    from vibes_eval.toy.bench import build_bench

    with pytest.raises(ValueError, match="unknown bench size 'huge'"):
        build_bench(tmp_path / "x", size="huge")
