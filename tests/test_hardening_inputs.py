"""Issue 13, hostile inputs: suites, configs, chat templates and pickles that used to hang, eat memory or trace back.

Each must end in one line and exit 2 (the suite or flags) or 3 (the checkpoint), quickly and
without allocating what the input asks for.
"""

from __future__ import annotations

import json
import pickle
import shutil
import struct
import zlib
from pathlib import Path

import pytest
from helpers import REPO, SHAPES

from vibes_eval.adapters.sanity import read_config
from vibes_eval.adapters.template_sandbox import TemplateTooCostly, check_template
from vibes_eval.cli.main import main
from vibes_eval.errors import CheckpointError, SuiteError
from vibes_eval.suite.schema import load_suite

TOY_CONFIG = {
    "architectures": ["LlavaForConditionalGeneration"], "model_type": "llava",
    "text_config": {"model_type": "llama", "hidden_size": 128, "intermediate_size": 384, "num_hidden_layers": 4,
                    "num_attention_heads": 4, "vocab_size": 512, "max_position_embeddings": 256},
    "vision_config": {"model_type": "clip_vision_model", "hidden_size": 96, "image_size": 64, "patch_size": 16,
                      "num_hidden_layers": 3},
}


def suite_file(tmp_path: Path, body: str, image: bytes | None = None) -> Path:
    (tmp_path / "img.png").write_bytes(image if image is not None else (REPO / "suites/images/shapes/describe-two.png").read_bytes())
    path = tmp_path / "suite.yaml"
    path.write_text(body)
    return path


PROMPT = "prompts:\n  - {id: p1, category: vqa, image: img.png, question: What is it, expect: {any: [x]}%s}\n"


def one_line_exit(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return code, err


# --- suites ---------------------------------------------------------------------------------------------


def test_a_yaml_alias_bomb_is_refused_before_it_expands(tmp_path, capsys):
    lines = ["name: s", "x0: &a0 [v, v, v, v, v, v, v, v, v]"]
    lines += [f"x{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 12)]  # 9^12 values once expanded
    lines += ["prompts:", "  - id: p1", "    category: *a11", "    image: img.png", "    question: What is it"]
    code, err = one_line_exit(["validate", str(suite_file(tmp_path, "\n".join(lines) + "\n"))], capsys)
    assert code == 2 and "yaml: the document expands to more than 100,000 values" in err


def test_a_long_value_is_quoted_by_a_short_prefix(tmp_path):
    path = suite_file(tmp_path, "name: s\n" + PROMPT.replace("category: vqa", "category: " + "v" * 200_000) % "")
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert "prompts[0].category: unknown value 'vvvv" in str(e.value) and len(str(e.value)) < 400


@pytest.mark.parametrize("where, field", [("defaults: {max_new_tokens: 2000000}\n", "defaults.max_new_tokens"),
                                          ("", "prompts[0].max_new_tokens")])
def test_max_new_tokens_is_bounded_in_the_suite(tmp_path, capsys, where, field):
    extra = "" if where else ", max_new_tokens: 2000000"
    path = suite_file(tmp_path, "name: s\n" + where + PROMPT % extra)
    code, err = one_line_exit(["validate", str(path)], capsys)
    assert code == 2 and f"{field}: Input should be less than or equal to 32768" in err


def test_max_new_tokens_above_the_checkpoint_context_names_the_field(tmp_path):
    suite = load_suite(suite_file(tmp_path, "name: s\n" + PROMPT % ", max_new_tokens: 300"))
    assert (
        suite.token_problem(256)
        == f"{tmp_path / 'suite.yaml'}: prompts[0].max_new_tokens: 300 is more than the checkpoint's context (256 tokens)"
    )
    assert suite.token_problem(4096) is None


def bomb_png(w: int = 20000, h: int = 20000) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("w, h", [(20000, 20000), (8000, 6000)])  # over Pillow's own limit, and under it but over ours
def test_a_huge_pixel_image_is_refused_from_its_header(tmp_path, capsys, w, h):
    path = suite_file(tmp_path, "name: s\n" + PROMPT % "", image=bomb_png(w, h))
    code, err = one_line_exit(["validate", str(path)], capsys)
    assert code == 2 and "prompts[0].image: image too large: img.png" in err


def test_validate_prints_no_control_characters(tmp_path, capsys):
    path = suite_file(tmp_path, 'name: "\\e]0;pwned\\a\\e[2Jfine"\n' + PROMPT % "")
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: fine: 1 prompts") and "\x1b" not in out and "\x07" not in out


# --- checkpoint configs, templates, pickles -------------------------------------------------------------


@pytest.mark.parametrize("edit, words", [
    (("text_config", "num_hidden_layers", 1_000_000), "text_config.num_hidden_layers: 1000000 is more than 512"),
    (("vision_config", "hidden_size", 10**7), "vision_config.hidden_size: 10000000 is more than 65,536"),
    (("text_config", "vocab_size", -5), "text_config.vocab_size: -5 is not a positive integer"),
    (("text_config", "num_hidden_layers", "many"), "text_config.num_hidden_layers: many is not a non-negative integer"),
    (("vision_config", "patch_size", 1), "vision_config.image_size: 2048 with patch_size 1 is 4,194,304 patches per image"),
    (("text_config", "hidden_size", 60000), "about"),
])
def test_absurd_config_sizes_are_refused_before_loading(tmp_path, capsys, edit, words):
    cfg = json.loads(json.dumps(TOY_CONFIG))
    sub, key, value = edit
    cfg[sub][key] = value
    if key == "hidden_size" and value == 60000:
        cfg[sub].update(num_hidden_layers=500, intermediate_size=240000)
    if key == "patch_size":
        cfg[sub]["image_size"] = 2048  # at patch 1: 4 M position embeddings per image
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError) as e:
        read_config(tmp_path / "ck")
    assert words in str(e.value)
    code, err = one_line_exit(["run", str(tmp_path / "ck"), "--suite", str(SHAPES), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 3 and words in err


def test_plausible_configs_pass():
    for cfg in [TOY_CONFIG] + [json.loads(p.read_text()) for p in (REPO / "tests" / "fixtures").rglob("config.json")]:
        from vibes_eval.adapters.sanity import check_sizes

        check_sizes(cfg)


CTX = {"messages": [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "hi"}]}], "add_generation_prompt": True}


@pytest.mark.parametrize("source, words", [
    ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}", "more than 100,000 range() items"),
    ("{{ 'a' * 10000000000 }}", "builds a value of 10,000,000,000 items"),
    ("{{ 9 ** 99999999 }}", "computes 9 ** 99999999"),
    ("{% for m in messages %}{% for i in range(99999) %}{{ m.role * 100 }}{% endfor %}{% endfor %}", "writes more than"),
    # transformers' {% generation %} tag (llava-1.5's own template has it): checked, not skipped as a syntax error
    ("{% generation %}{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}{% endgeneration %}",
     "more than 100,000 range() items"),
])
def test_a_chat_template_is_rendered_within_bounds(source, words):
    with pytest.raises(TemplateTooCostly) as e:
        check_template(source, CTX)
    assert words in str(e.value)


def test_an_ordinary_chat_template_passes_and_errors_are_left_to_transformers():
    check_template("USER: <image>\n{{ messages[0]['content'][1]['text'] }} ASSISTANT:", CTX)
    check_template("{{ raise_exception('no system role') }}", CTX)
    check_template("{% for %}", CTX)


def test_llava_15s_own_template_is_rendered_by_the_guard_as_transformers_renders_it():
    import json

    from vibes_eval.adapters.template_sandbox import check_processor_template

    transformers = pytest.importorskip("transformers")
    real = REPO / "tests/fixtures/reference_configs/llava-1.5-7b-hf"
    source = json.loads((real / "chat_template.json").read_text())["chat_template"]
    assert "{% generation %}" in source  # the tag the guard's environment must know
    tok = transformers.AutoTokenizer.from_pretrained(real)
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the image?"}]}]
    want = tok.apply_chat_template(msgs, chat_template=source, tokenize=False, add_generation_prompt=True)

    class Processor:  # what the guard reads from a processor: its template and its tokenizer
        chat_template = source
        tokenizer = tok

    assert check_processor_template(Processor(), msgs) == want == "USER: <image>\nWhat is in the image? ASSISTANT:"


def test_a_looping_chat_template_is_exit_3_in_one_line(zoo_dir, tmp_path, capsys):
    ck = tmp_path / "healthy"
    shutil.copytree(zoo_dir / "healthy", ck)
    (ck / "chat_template.jinja").write_text("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}")
    code, err = one_line_exit(["run", str(ck), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 3 and "chat_template: the chat template loops over more than 100,000 range() items" in err


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_a_non_tensor_pickle_as_pytorch_model_bin_is_exit_3(zoo_dir, tmp_path, capsys):
    ck = tmp_path / "healthy"
    shutil.copytree(zoo_dir / "healthy", ck)
    (ck / "model.safetensors").unlink()
    with open(ck / "pytorch_model.bin", "wb") as f:
        pickle.dump({"weight": Evil()}, f)
    code, err = one_line_exit(["run", str(ck), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 3 and str(ck) in err and "pwned" not in capsys.readouterr().out
    assert (tmp_path / "out" / "scorecard.json").is_file()


@pytest.mark.parametrize("where", ["vision_tower", "lora"])
def test_a_non_tensor_pickle_in_the_vision_tower_or_lora_adapter_is_exit_3(zoo_dir, tmp_path, capsys, where):
    from vibes_eval.toy.llava_repo_format import write_llava_repo

    layout = write_llava_repo(zoo_dir / "healthy", tmp_path / "repo")
    if where == "vision_tower":
        (layout["vision_tower"] / "model.safetensors").unlink()
        target, argv = layout["vision_tower"] / "pytorch_model.bin", [str(layout["full"]), "--vision-tower", str(layout["vision_tower"])]
    else:
        (layout["lora"] / "adapter_model.safetensors").unlink()
        target = layout["lora"] / "adapter_model.bin"
        argv = [str(layout["lora"]), "--base", str(layout["base"]), "--vision-tower", str(layout["vision_tower"])]
    with open(target, "wb") as f:
        pickle.dump({"weight": Evil()}, f)
    code, err = one_line_exit(["run", *argv, "--suite", str(SHAPES), "--out", str(tmp_path / "out"), "--quiet"], capsys)
    assert code == 3 and ("pickle" in err.lower() or "weights only" in err.lower()), err
    assert "pwned" not in capsys.readouterr().out
    assert (tmp_path / "out" / "scorecard.json").is_file()
