"""The toy factory: a world with exact answers, and checkpoints that load with the real classes."""

from __future__ import annotations

import json
import random

import pytest

from vibes_eval.toy import world
from vibes_eval.toy.variants import VARIANTS

HELD_OUT_SEED = 7777  # never used by the factory (it trains on 1000+seed, reports on 2000+seed)


def test_world_is_deterministic():
    a = [world.sample_scene(random.Random(5)) for _ in range(3)]
    b = [world.sample_scene(random.Random(5)) for _ in range(3)]
    assert a == b
    assert world.render(a[0]).tobytes() == world.render(b[0]).tobytes()


@pytest.mark.parametrize("seed", range(20))
def test_every_scene_has_every_family_with_exact_answers(seed):
    rng = random.Random(seed)
    scene = world.sample_scene(rng)
    qas = world.qa_pairs(scene, rng)
    assert {q.family for q in qas} == {"caption", "color", "shape", "count", "position", "yesno", "reasoning", "refusal"}
    for qa in qas:
        if qa.family == "color":
            assert qa.answer in world.COLORS
        if qa.family == "count":
            assert qa.answer == world.NUMBERS[len(scene.shapes)]
    assert [q.answer for q in qas if q.family == "yesno"] == ["yes", "no"]


def test_scene_shapes_sit_on_their_side():
    rng = random.Random(0)
    for _ in range(200):
        scene = world.sample_scene(rng)
        assert len({s.side for s in scene.shapes}) == len(scene.shapes)
        for s in scene.shapes:
            assert (s.cx < world.IMAGE_SIZE // 2) == (s.side == "left")


def test_toy_prompt_text_is_the_chat_template():
    from vibes_eval.toy import assets, train

    proc = assets.build_processor(0)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the circle?"}]}]
    assert proc.apply_chat_template(msgs, add_generation_prompt=True) == train.prompt_text("What color is the circle?")


def test_zoo_has_every_variant_as_a_checkpoint_folder(zoo_dir):
    for name in VARIANTS:
        folder = zoo_dir / name
        assert (folder / "config.json").is_file(), name
        assert (folder / "model.safetensors").is_file(), name
        assert json.loads((folder / "config.json").read_text())["architectures"] == ["LlavaForConditionalGeneration"]


def test_processor_counts_sixteen_image_tokens(zoo_dir):
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(zoo_dir / "healthy", local_files_only=True)
    assert proc.num_additional_image_tokens == 1  # CLIP's CLS, dropped by strategy "default"
    enc = proc(text=["USER: <image>\nHi ASSISTANT:"], images=[world.render(world.sample_scene(random.Random(1)))], return_tensors="pt")
    assert int((enc["input_ids"] == proc.tokenizer.convert_tokens_to_ids("<image>")).sum()) == 16


def _load(folder):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    proc = AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(folder, local_files_only=True).eval()
    return proc, model


def test_healthy_answers_a_colour_question_through_the_chat_template(zoo_dir):
    import torch

    proc, model = _load(zoo_dir / "healthy")
    scene = world.Scene((world.Shape("circle", "blue", "left", 18, 30, 19),), jitter=0)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the circle?"}]}]
    text = proc.apply_chat_template(msgs, add_generation_prompt=True)
    enc = proc(text=[text], images=[world.render(scene)], return_tensors="pt")
    with torch.inference_mode():
        out = model.generate(**enc, max_new_tokens=8, do_sample=False)
    assert proc.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True).strip() == "blue"


@pytest.fixture(scope="module")
def heldout():
    from vibes_eval.toy import assets, train

    return train.make_split(assets.build_processor(0), HELD_OUT_SEED, 120)


def test_healthy_accuracy_on_a_held_out_split(zoo_dir, heldout):
    from vibes_eval.toy import train

    proc, model = _load(zoo_dir / "healthy")
    acc = train.evaluate(model, proc, heldout, families=("color", "shape", "count", "refusal"))
    assert acc["color"] >= 0.90, acc
    assert acc["shape"] >= 0.80, acc
    assert acc["count"] >= 0.95, acc
    assert acc["refusal"] == 1.0, acc


@pytest.mark.parametrize("variant", ["disconnected", "image-blind"])
def test_broken_image_paths_answer_colour_near_chance(zoo_dir, heldout, variant):
    from vibes_eval.toy import train

    proc, model = _load(zoo_dir / variant)
    acc = train.evaluate(model, proc, heldout, families=("color",))
    assert acc["color"] <= 0.45, acc


def test_missing_projector_is_reported_newly_initialized(zoo_dir):
    from safetensors import safe_open
    from transformers import LlavaForConditionalGeneration

    with safe_open(str(zoo_dir / "missing-projector" / "model.safetensors"), framework="pt") as f:
        assert not [k for k in f.keys() if "multi_modal_projector" in k]
    _, info = LlavaForConditionalGeneration.from_pretrained(zoo_dir / "missing-projector", local_files_only=True, output_loading_info=True)
    assert any("multi_modal_projector" in k for k in info["missing_keys"])


def test_zero_projector_is_all_zero(zoo_dir):
    from safetensors.torch import load_file

    tensors = load_file(zoo_dir / "zero-projector" / "model.safetensors")
    proj = [v for k, v in tensors.items() if "multi_modal_projector" in k]
    assert len(proj) == 4 and all(float(v.abs().max()) == 0.0 for v in proj)


def test_wrong_template_ships_another_family_template(zoo_dir):
    from transformers import AutoProcessor

    proc = AutoProcessor.from_pretrained(zoo_dir / "wrong-template", local_files_only=True)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Hi"}]}]
    assert proc.apply_chat_template(msgs, add_generation_prompt=True).startswith("[INST]")


def test_cli_toy_build_copies_one_variant(zoo, tmp_path):
    from vibes_eval.cli.main import main

    assert main(["toy", "build", str(tmp_path / "z"), "--variant", "healthy", "--variant", "image_blind"]) == 0
    assert (tmp_path / "z" / "healthy" / "config.json").is_file()
    assert (tmp_path / "z" / "image-blind" / "config.json").is_file()  # as the diagnosis spells it, too
    assert not (tmp_path / "z" / "gibberish").exists()


def test_cli_toy_build_rejects_an_unknown_variant(tmp_path, capsys):
    from vibes_eval.cli.main import main

    assert main(["toy", "build", str(tmp_path), "--variant", "healthyy"]) == 2
    assert "unknown variant 'healthyy'" in capsys.readouterr().err


def test_the_cached_zoo_is_marked_so_run_on_a_path_the_demo_prints_asks_the_shapes_suite(zoo):
    from vibes_eval.resources import TOY_MARKER, bundled_suite, default_suite
    from vibes_eval.toy.factory import build_zoo
    from vibes_eval.toy.variants import VARIANTS

    cached = build_zoo(0, log=lambda message: None)
    victim = cached / "healthy" / TOY_MARKER
    victim.unlink()  # as a zoo cached by an earlier version has it
    assert build_zoo(0, log=lambda message: None) == cached and victim.is_file()
    assert all(default_suite(cached / name) == bundled_suite("shapes") for name in VARIANTS)
