"""The visual-token budget: literal counts, transformers cross-checks, checkpoint folders, the CLI."""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import FIXTURES, REPO
from rich.console import Console

from vibes_eval.budget.checkpoint import budget_for_checkpoint
from vibes_eval.budget.geometry import (
    CONTEXTS,
    DEFAULT_IMAGE_SIZES,
    FAMILIES,
    best_pinpoint,
    parse_image_size,
    projector_params,
    visual_tokens,
)
from vibes_eval.cli.budget import add_budget_parser, budget_command
from vibes_eval.errors import BudgetError

# verbatim copies of published checkpoints' config files (metadata, no weights)
REFERENCE = FIXTURES / "reference_configs"
LLAVA, LLAVA_NEXT = "LlavaForConditionalGeneration", "LlavaNextForConditionalGeneration"
needs_reference = pytest.mark.skipif(not REFERENCE.is_dir(), reason="tests/fixtures/reference_configs not checked out")
# Sizes that exercise every branch: square, wide, tall, tiny, extreme strips, the OneVision downscale.
CROSS_SIZES = [
    (336, 336), (384, 384), (1344, 672), (672, 1344), (1000, 300), (300, 1000), (2304, 2304), (4000, 3000),
    (640, 427), (451, 300), (110, 176), (47, 1128), (1, 1), (5000, 7), (123, 4567), (1920, 1080),
]


# ---- literal counts ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "family, size, tokens",
    [
        ("llava", (336, 336), 576),
        ("llava", (1344, 672), 576),  # one view, whatever the size
        ("llava-next", (1344, 672), 1752),
        ("llava-next", (672, 1344), 1776),  # one newline per row: tall images cost more
        ("llava-next", (336, 336), 1176),
        ("llava-next", (672, 672), 2928),
        ("llava-onevision", (384, 384), 1485),  # 729 base + 27x27 tile + 27 newlines
        ("llava-onevision", (2304, 2304), 7371),  # 162x162 grid shrunk to 81x81 (anyres_max_9)
    ],
)
def test_visual_tokens(family, size, tokens):
    assert visual_tokens(family, *size) == tokens


@pytest.mark.parametrize(
    "family, base", [("llava", 576), ("llava-next", 576), ("llava-onevision", 729)]
)
def test_base_view(family, base):
    assert FAMILIES[family].view_tokens == base
    assert FAMILIES[family].image(384, 384).base_tokens == base


@pytest.mark.parametrize(
    "family, size, tiles, resolution, features",
    [
        ("llava-next", (1344, 672), (2, 1), (672, 336), (48, 24)),
        ("llava-next", (672, 1344), (1, 2), (336, 672), (24, 48)),
        ("llava-next", (336, 336), (2, 1), (672, 336), (24, 24)),  # tie: first pinpoint wins, width unpadded
        ("llava-onevision", (2304, 2304), (6, 6), (2304, 2304), (81, 81)),
        ("llava-onevision", (1000, 300), (3, 1), (1152, 384), (81, 25)),
    ],
)
def test_grid(family, size, tiles, resolution, features):
    b = FAMILIES[family].image(*size)
    assert (b.tiles, b.resolution, b.features) == (tiles, resolution, features)
    assert b.grid == f"{tiles[0]}x{tiles[1]} @ {resolution[0]}x{resolution[1]}"


def test_share_of_context():
    b = FAMILIES["llava-next"].image(1344, 672)
    assert CONTEXTS == (2048, 32768, 131072)
    assert [round(b.share(c), 4) for c in CONTEXTS] == [0.8555, 0.0535, 0.0134]
    assert FAMILIES["llava-onevision"].image(2304, 2304).share(2048) > 1  # does not fit a 2k context


@pytest.mark.parametrize(
    "args, params",
    [
        ((1024, 4096), 20_979_712),
        ((1024, 4096, "linear"), 4_198_400),
        ((4096, 4096, "identity"), 0),
        ((1024, 4096, "mlp3x_gelu"), 20_979_712 + 4096 * 4096 + 4096),
        ((1152, 896), 1_836_800),
    ],
)
def test_projector_params(args, params):
    assert projector_params(*args) == params


def test_projector_params_without_bias_and_unknown_kind():
    assert projector_params(1024, 4096, bias=False) == 1024 * 4096 + 4096 * 4096
    with pytest.raises(BudgetError, match="mm_projector_type: unknown projector 'resampler'"):
        projector_params(1024, 4096, "resampler")


@pytest.mark.parametrize(
    "text, size", [("1344x672", (1344, 672)), (" 336 X 336 ", (336, 336)), ("1x1", (1, 1))]
)
def test_parse_image_size(text, size):
    assert parse_image_size(text) == size


@pytest.mark.parametrize("text", ["13x", "x13", "0x5", "336", "336x-1", "3.5x2", "axb"])
def test_parse_image_size_rejects(text):
    with pytest.raises(BudgetError, match=r"^--image-size: expected WIDTHxHEIGHT"):
        parse_image_size(text)


def test_cls_strategy_rules():
    llava = FAMILIES["llava"]
    assert replace(llava, strategy="full").tokens(336, 336) == 577  # CLS kept
    assert replace(FAMILIES["llava-onevision"], strategy="default").view_tokens == 728  # drops a real patch
    with pytest.raises(BudgetError, match="keeps 577 tokens per view"):
        replace(FAMILIES["llava-next"], strategy="full").tokens(672, 672)


# ---- cross-checks against transformers (imported here only) -----------------------------------


@pytest.fixture(scope="module")
def tfm():
    return pytest.importorskip("transformers")


def test_best_pinpoint_matches_transformers(tfm):
    from transformers.image_processing_utils import select_best_resolution

    for family in ("llava-next", "llava-onevision"):
        pins = FAMILIES[family].pinpoints
        for w, h in CROSS_SIZES:
            assert best_pinpoint(w, h, pins) == select_best_resolution((h, w), [list(p) for p in pins])


def _tiny_tokenizer(tfm):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "<image>": 1, "<video>": 2, "hi": 3}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return tfm.PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", additional_special_tokens=["<image>", "<video>"]
    )


def test_llava_next_matches_the_real_processor(tfm):
    """A LlavaNextProcessor built offline inserts exactly our count of <image> tokens."""
    from PIL import Image

    spec = FAMILIES["llava-next"]
    # the PIL image processor: the default class only warns and falls back to it without torchvision
    image_cls = getattr(tfm, "LlavaNextImageProcessorPil", None) or tfm.LlavaNextImageProcessor
    processor = tfm.LlavaNextProcessor(
        image_processor=image_cls(
            image_grid_pinpoints=[list(p) for p in spec.pinpoints],
            size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
        ),
        tokenizer=_tiny_tokenizer(tfm),
        patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1,
    )
    for w, h in [(1344, 672), (672, 1344), (336, 336), (640, 427), (110, 176), (47, 1128)]:
        ids = processor(images=Image.new("RGB", (w, h)), text="<image> hi", return_tensors="np")["input_ids"]
        assert int((ids == 1).sum()) == spec.tokens(w, h), (w, h)


def test_llava_onevision_matches_processor_and_model(tfm):
    """OneVision: the processor's own count and the model's pack_image_features agree with ours.

    The full LlavaOnevisionProcessor needs a video processor (torchvision), so its counting method
    runs on a bare instance; pack_image_features runs on zero features of the right shape.
    """
    torch = pytest.importorskip("torch")
    from transformers.models.llava_onevision import modeling_llava_onevision as mod

    spec = FAMILIES["llava-onevision"]
    proc = object.__new__(tfm.LlavaOnevisionProcessor)
    proc.image_processor = types.SimpleNamespace(image_grid_pinpoints=[list(p) for p in spec.pinpoints])
    proc.num_image_tokens, proc.vision_aspect_ratio = 729, "anyres_max_9"
    config = tfm.LlavaOnevisionConfig()
    fake_model = types.SimpleNamespace(config=config)
    for w, h in CROSS_SIZES:
        assert proc._get_number_of_features(h, w, 384, 384) == spec.tokens(w, h), (w, h)
        n_views = mod.image_size_to_num_patches([h, w], config.image_grid_pinpoints, 384)
        _, lens = mod.LlavaOnevisionModel.pack_image_features(
            fake_model, [torch.zeros(n_views, 729, 1)], torch.tensor([[h, w]]), image_newline=torch.zeros(1)
        )
        assert int(lens[0]) == spec.tokens(w, h), (w, h)


def test_llava_next_matches_model_packing(tfm):
    torch = pytest.importorskip("torch")
    from transformers.models.llava_next import modeling_llava_next as mod

    spec, config = FAMILIES["llava-next"], tfm.LlavaNextConfig()
    fake_model = types.SimpleNamespace(config=config)
    for w, h in CROSS_SIZES:
        n_views = mod.image_size_to_num_patches([h, w], config.image_grid_pinpoints, 336)
        _, lens = mod.LlavaNextModel.pack_image_features(
            fake_model, [torch.zeros(n_views, 576, 1)], torch.tensor([[h, w]]), "default",
            image_newline=torch.zeros(1),
        )
        assert int(lens[0]) == spec.tokens(w, h), (w, h)


# ---- checkpoint folders ------------------------------------------------------------------------


def _copy(name: str, tmp_path: Path) -> Path:
    dst = tmp_path / name
    shutil.copytree(REFERENCE / name, dst)
    return dst


def _edit(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(json.dumps(data))


@needs_reference
@pytest.mark.parametrize(
    "name, family, tokens, projector",
    [
        ("llava-1.5-7b-hf", "llava", [576, 576, 576, 576], 20_979_712),
        ("liuhaotian_llava-v1.5-7b", "llava", [576, 576, 576, 576], 20_979_712),
        ("llava-v1.6-mistral-7b-hf_RECONSTRUCTED", "llava-next", [1176, 2928, 1752, 1776], 20_979_712),
        ("liuhaotian_llava-v1.6-vicuna-7b_TRANSCRIBED", "llava-next", [1176, 2928, 1752, 1776], 20_979_712),
        ("LLaVA-NeXT-Video-7B-hf_AUTOCONFIG-DUMP", "llava-next", [1176, 2928, 1752, 1776], 20_979_712),
        ("llava-onevision-qwen2-0.5b-ov-hf_RECONSTRUCTED", "llava-onevision", [1485, 3699, 6615, 6669], 1_836_800),
    ],
)
def test_reference_checkpoints(name, family, tokens, projector, tmp_path):
    spec = budget_for_checkpoint(_copy(name, tmp_path))
    assert spec.family == family
    assert [spec.tokens(w, h) for w, h in DEFAULT_IMAGE_SIZES] == tokens
    assert spec.projector.params == projector
    if name == "LLaVA-NeXT-Video-7B-hf_AUTOCONFIG-DUMP":  # config.json only: no processor can count
        assert len(spec.notes) == 1 and "processor_config.json is missing" in spec.notes[0]
    else:
        assert spec.notes == ()
    assert all(spec.image(w, h).processor_tokens in (None, spec.tokens(w, h)) for w, h in DEFAULT_IMAGE_SIZES)


@needs_reference
@pytest.mark.parametrize("name, field, repair", [
    ("llava-1.5-7b-hf", "patch_size", "patch_size 14"),
    ("llava-onevision-qwen2-0.5b-ov-hf_RECONSTRUCTED", "num_image_tokens", "num_image_tokens 729"),
])
def test_budget_warns_when_the_processor_cannot_count(tmp_path, name, field, repair):
    """A folder saved before processor_config.json existed: the counts are the model's, said out loud."""
    d = _copy(name, tmp_path)
    (d / "processor_config.json").unlink()
    spec = budget_for_checkpoint(d)
    assert spec.image(336, 336).processor_tokens is None
    assert len(spec.notes) == 1 and "cannot count image tokens" in spec.notes[0] and repair in spec.notes[0]
    out = _run(["budget", str(d)])
    assert out.rc == 0 and "warning:" in out.stdout and "processor_config.json is missing" in " ".join(out.stdout.split())


@needs_reference
def test_transformers_5x_layout_reads_the_nested_image_processor(tmp_path):
    """5.x: no preprocessor_config.json; the image processor sits under processor_config.json["image_processor"]."""
    d = _copy("llava-v1.6-mistral-7b-hf_RECONSTRUCTED", tmp_path)
    image_proc = json.loads((d / "preprocessor_config.json").read_text())
    (d / "preprocessor_config.json").unlink()
    image_proc["image_grid_pinpoints"] = [[336, 672], [672, 336]]  # only these two: proves where they came from
    _edit(d / "processor_config.json", image_processor=image_proc)
    _edit(d / "config.json", image_grid_pinpoints=None)
    spec = budget_for_checkpoint(d)
    assert spec.pinpoints == ((336, 672), (672, 336))
    assert spec.tokens(1344, 672) == 1752
    assert spec.image(672, 672).tiles == (2, 1)  # 2x2 is no longer on offer


@needs_reference
def test_processor_trap_num_additional_image_tokens(tmp_path):
    """CLIP + strategy default needs num_additional_image_tokens=1, else 575 tokens for 576 features."""
    d = _copy("llava-1.5-7b-hf", tmp_path)
    _edit(d / "processor_config.json", num_additional_image_tokens=None)
    spec = budget_for_checkpoint(d)
    b = spec.image(336, 336)
    assert (b.tokens, b.processor_tokens) == (576, 575)
    assert len(spec.notes) == 1 and "num_additional_image_tokens is 0" in spec.notes[0]
    out = _run(["budget", str(d)])
    assert out.rc == 0 and "warning:" in out.stdout and "num_additional_image_tokens is 0" in out.stdout


@needs_reference
def test_original_format_variants(tmp_path):
    d = _copy("liuhaotian_llava-v1.6-vicuna-7b_TRANSCRIBED", tmp_path)
    spec = budget_for_checkpoint(d)
    assert spec.layout == "llava-repo"
    # the original reads pinpoints as (width, height): the 336x336 tie goes to a tall grid there
    assert spec.image(336, 336).grid == "1x2 @ 336x672"
    # and it picks a different grid than transformers for a small portrait image (all upscales tie)
    assert spec.tokens(110, 176) == 1526 and FAMILIES["llava-next"].tokens(110, 176) == 984

    _edit(d / "config.json", mm_patch_merge_type=None)  # the original default is "flat": no unpad, no newlines
    assert budget_for_checkpoint(d).tokens(1344, 672) == 3 * 576

    v15 = _copy("liuhaotian_llava-v1.5-7b", tmp_path)
    _edit(v15 / "config.json", mm_vision_select_feature="cls_patch", mm_projector_type="resampler")
    spec = budget_for_checkpoint(v15)
    assert spec.tokens(336, 336) == 577 and spec.projector is None  # a fork's projector: size unknown, count stands
    _edit(v15 / "config.json", mm_vision_select_feature=None, mm_vision_tower="openai/clip-vit-large-patch14")
    assert budget_for_checkpoint(v15).tokens(336, 336) == 256  # 224 px tower


@needs_reference
def test_original_format_local_tower_and_stage1(tmp_path):
    d = _copy("liuhaotian_llava-v1.5-7b", tmp_path)
    tower = d / "my-tower"
    tower.mkdir()
    tower_cfg = {"model_type": "clip_vision_model", "image_size": 448, "patch_size": 14}
    (tower / "config.json").write_text(json.dumps(tower_cfg))
    _edit(d / "config.json", mm_vision_tower=str(tower), model_type="llava_llama", architectures=["LlamaForCausalLM"])
    assert budget_for_checkpoint(d).tokens(10, 10) == 32 * 32


def test_original_format_onevision_shorthand(tmp_path):
    """LLaVA-NeXT repo OneVision: SigLIP tower, pinpoints as "(1x1),...,(6x6)", anyres_max_9."""
    cfg = {
        "architectures": ["LlavaQwenForCausalLM"], "mm_vision_tower": "google/siglip-so400m-patch14-384",
        "image_aspect_ratio": "anyres_max_9", "image_grid_pinpoints": "(1x1),...,(6x6)",
        "mm_patch_merge_type": "spatial_unpad", "mm_hidden_size": 1152, "hidden_size": 896,
        "mm_projector_type": "mlp2x_gelu",
    }
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    spec = budget_for_checkpoint(tmp_path)
    assert (spec.family, spec.view_tokens, spec.max_tiles, len(spec.pinpoints)) == ("llava-onevision", 729, 9, 36)
    assert spec.tokens(384, 384) == 1485 and spec.tokens(2304, 2304) == 7371
    assert spec.projector.params == 1_836_800
    _edit(tmp_path / "config.json", mm_projector_type=None)  # the original code's default is linear
    assert budget_for_checkpoint(tmp_path).projector.params == 1152 * 896 + 896


@pytest.mark.parametrize(
    "files, message",
    [
        ({}, r"config\.json: file not found"),
        ({"config.json": "{not json"}, r"config\.json: not valid JSON"),
        (
            {"config.json": {"architectures": ["Qwen2ForCausalLM"]}},
            r"config\.json: architectures: 'Qwen2ForCausalLM' is not a LLaVA-family checkpoint",
        ),
        ({"config.json": {}}, r"config\.json: architectures: None is not"),
        (
            {"config.json": {"architectures": [LLAVA], "vision_feature_select_strategy": "cls"}},
            r"config\.json: vision_feature_select_strategy: expected default or full, got 'cls'",
        ),
        (
            {"config.json": {"architectures": [LLAVA_NEXT], "image_grid_pinpoints": [[336]]}},
            r"config\.json: image_grid_pinpoints: expected \[\[height, width\], \.\.\.\]",
        ),
        (
            {"config.json": {"architectures": [LLAVA], "vision_config": {"model_type": "eva", "patch_size": 14}}},
            r"config\.json: vision_config\.image_size: expected a positive integer, got None",
        ),
        (
            {"config.json": {"mm_vision_tower": "my-own-tower"}},
            r"config\.json: mm_vision_tower: cannot tell the patch size of 'my-own-tower'",
        ),
        (
            {"config.json": {"mm_vision_tower": "clip-patch14-336", "image_aspect_ratio": "crop"}},
            r"config\.json: image_aspect_ratio: expected anyres_max_N, got 'crop'",
        ),
        (
            {"config.json": {"mm_vision_tower": "clip-patch14-336", "image_aspect_ratio": "anyres"}},
            r"config\.json: image_grid_pinpoints: missing, and image_aspect_ratio is 'anyres'",
        ),
        (
            {"config.json": {"mm_vision_tower": "clip-patch14-336", "mm_vision_select_feature": "cls"}},
            r"config\.json: mm_vision_select_feature: expected patch or cls_patch",
        ),
        (
            {"config.json": {"architectures": [LLAVA]}, "processor_config.json": "[1]"},
            r"processor_config\.json: expected a JSON object, got list",
        ),
        (
            {
                "config.json": {"architectures": [LLAVA]},
                "processor_config.json": {"patch_size": 14, "num_additional_image_tokens": "1"},
            },
            r"processor_config\.json: num_additional_image_tokens: expected 0 or 1, got '1'",
        ),
    ],
)
def test_unknown_layouts_name_file_and_field(files, message, tmp_path):
    for name, content in files.items():
        (tmp_path / name).write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(BudgetError, match=message) as err:
        budget_for_checkpoint(tmp_path)
    assert "\n" not in str(err.value) and str(tmp_path) in str(err.value)


def test_missing_folder(tmp_path):
    with pytest.raises(BudgetError, match="checkpoint folder not found"):
        budget_for_checkpoint(tmp_path / "nope")


# ---- command line ------------------------------------------------------------------------------


class _Out(NamedTuple):
    rc: int
    stdout: str


def _run(argv: list[str]) -> _Out:
    """Parse like the cli does (a `budget` sub-command), render into a 100-column string console."""
    parser = argparse.ArgumentParser(prog="vibes-eval")
    add_budget_parser(parser.add_subparsers(dest="command"))
    buf = io.StringIO()
    rc = budget_command(parser.parse_args(argv), console=Console(width=100, file=buf))
    return _Out(rc, buf.getvalue())


def test_cli_family_and_size():
    out = _run(["budget", "--family", "llava-next", "--image-size", "1344x672"])
    assert out.rc == 0
    assert "1752" in out.stdout and "2x1 @ 672x336" in out.stdout and "85.5%" in out.stdout


def test_cli_default_sizes_and_families():
    out = _run(["budget"])
    assert out.rc == 0
    titles = ("llava: 576 tokens", "llava-next: 576 tokens", "llava-onevision: 729 tokens")
    for text in (*titles, "336x336", "672x1344", "1176", "1776", "6669"):
        assert text in out.stdout


def test_cli_sizes_repeatable_and_comma_separated():
    out = _run(["budget", "--family", "llava-next", "--image-size", "672x1344,336x336", "--image-size", "1344x672"])
    rows = [line for line in out.stdout.splitlines() if line.startswith("│")]
    assert [r.split("│")[1].strip() for r in rows] == ["672x1344", "336x336", "1344x672"]
    assert [r.split("│")[4].strip() for r in rows] == ["1776", "1176", "1752"]


@needs_reference
def test_cli_checkpoint(tmp_path):
    out = _run(["budget", str(_copy("llava-v1.6-mistral-7b-hf_RECONSTRUCTED", tmp_path)), "--image-size", "672x1344"])
    assert out.rc == 0 and "1776" in out.stdout and "20,979,712" in out.stdout


def test_cli_prints_to_stdout_by_default(capsys):
    parser = argparse.ArgumentParser(prog="vibes-eval")
    add_budget_parser(parser.add_subparsers(dest="command"))
    assert budget_command(parser.parse_args(["budget", "--family", "llava", "--image-size", "336x336"])) == 0
    assert "576" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, line",
    [
        (
            ["budget", "--image-size", "13x"],
            "vibes-eval: --image-size: expected WIDTHxHEIGHT such as 1344x672, got '13x'",
        ),
        (
            ["budget", "--family", "llava-9"],
            "vibes-eval: --family: unknown family 'llava-9' (known: llava, llava-next, llava-onevision)",
        ),
        (["budget", "/no/such/dir"], "vibes-eval: /no/such/dir: checkpoint folder not found"),
        (["budget", "/no/such/dir", "--family", "llava"], "vibes-eval: give CKPT_DIR or --family, not both"),
    ],
)
def test_cli_errors_are_one_line_and_exit_2(argv, line, capsys):
    out = _run(argv)
    captured = capsys.readouterr()
    assert out.rc == 2 and out.stdout == ""
    assert captured.err == line + "\n"


def test_import_needs_no_torch():
    code = "import vibes_eval.budget.geometry, sys; assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, env=env, timeout=60)
