"""The suite format: the committed suites load, and every bad suite gives one line `file: field: problem`."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, SUITES
from PIL import Image

from vibes_eval.errors import SuiteError
from vibes_eval.suite.schema import STANDARD_MIX, Suite, load_suite, validate_command

# A valid 3/3/2/2 suite; each bad case below patches one piece of it.
GOOD = """\
name: tiny
description: a valid suite the bad cases start from
gate:
  max_fail: 1
prompts:
  - id: c1
    category: captioning
    image: images/a.png
    question: Describe the image.
    expect:
      any: [red]
      regex: "red (circle|disc)"
  - {id: c2, category: captioning, image: images/a.png, question: Describe it., expect: {all: [red, circle]}}
  - {id: c3, category: captioning, image: images/a.png, question: "What is this?", reference: a red circle}
  - {id: v1, category: vqa, image: images/a.png, question: "What color?", expect: {any: [red]}}
  - {id: v2, category: vqa, image: images/a.png, question: "How many?", expect: {any: [one, 1]}}
  - {id: v3, category: vqa, image: images/a.png, question: "Is it red?", expect: {any: [yes], none: [no]}}
  - {id: r1, category: reasoning, image: images/a.png, question: "If one more?", expect: {any: [two]}}
  - {id: r2, category: reasoning, image: images/a.png, question: "Same color?", expect: {min_words: 1, max_words: 5}}
  - {id: f1, category: refusal, image: images/a.png, question: "Who drew it?", expect: {refuse: true}}
  - {id: f2, category: refusal, image: images/a.png, question: "Where do they live?", expect: {refuse: true}}
"""


def _write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "images").mkdir(exist_ok=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(tmp_path / "images" / "a.png")
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    return path


def _patch(old: str, new: str) -> str:
    assert old in GOOD, old
    return GOOD.replace(old, new, 1)


# ------------------------------------------------------------------ committed suites


@pytest.mark.parametrize("name", ["default", "shapes"])
def test_committed_suite_loads_with_the_standard_mix(name):
    suite = load_suite(SUITES / f"{name}.yaml")
    assert suite.name == name
    assert suite.counts() == STANDARD_MIX
    assert suite.warnings() == []
    assert re.fullmatch(r"[0-9a-f]{64}", suite.sha256)
    for prompt in suite.prompts:
        path = suite.image_path(prompt)
        assert path.is_absolute() and path.is_file()
        assert path.is_relative_to((SUITES / "images").resolve())
        assert prompt.reference, prompt.id
        assert not prompt.expect.is_empty(), prompt.id


@pytest.mark.parametrize("name", ["default", "shapes"])
def test_validate_command_ok_on_committed_suites(name, capsys):
    assert validate_command(str(SUITES / f"{name}.yaml")) == 0
    out = capsys.readouterr()
    assert out.out == f"OK: {name}: 10 prompts (captioning 3, vqa 3, reasoning 2, refusal 2)\n"
    assert out.err == ""


def _bench():
    spec = importlib.util.spec_from_file_location("make_suite_images", REPO / "bench" / "make_suite_images.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_shapes_images_are_what_the_toy_world_renders():
    """If world.render changes, the committed scenes (and their exact answers) are stale: rerun the bench script."""
    from vibes_eval.toy.world import COLORS, KINDS, render

    scenes = _bench().SCENES
    suite = load_suite(SUITES / "shapes.yaml")
    assert sorted(Path(p.image).stem for p in suite.prompts) == sorted(scenes)  # one image per prompt
    for prompt in suite.prompts:
        scene = scenes[Path(prompt.image).stem]
        with Image.open(suite.image_path(prompt)) as im:
            assert im.size == (64, 64)
            assert im.convert("RGB").tobytes() == render(scene).tobytes(), prompt.id
        if prompt.category == "captioning":
            assert prompt.reference == scene.caption()
    shapes = [s for scene in scenes.values() for s in scene.shapes]
    assert {s.color for s in shapes} == set(COLORS) and {s.kind for s in shapes} == set(KINDS)
    assert {len(scene.shapes) for scene in scenes.values()} == {1, 2}


def test_default_photos_are_small():
    photos = list((SUITES / "images" / "photos").iterdir())
    assert sum(p.stat().st_size for p in photos) < 400_000
    for p in photos:
        with Image.open(p) as im:
            assert max(im.size) <= 336, p.name


# ------------------------------------------------------------------ a good suite


def test_good_suite_loads(tmp_path):
    suite = load_suite(_write(tmp_path, GOOD))
    assert isinstance(suite, Suite)
    assert suite.warnings() == []
    assert suite.root == tmp_path.resolve()
    assert suite.file == (tmp_path / "suite.yaml").resolve()
    assert suite.image_path(suite.prompts[0]) == (tmp_path / "images" / "a.png").resolve()
    assert suite.max_new_tokens(suite.prompts[0]) == 48
    assert suite.gate.max_fail == 1 and suite.gate.max_warn == 10
    assert "refusal_missing" in suite.gate.fail_on
    assert suite.prompts[0].expect.pattern.search("A RED DISC.")


def test_yes_no_and_numbers_stay_text(tmp_path):
    """YAML 1.1 reads yes/no as booleans and 1 as a number; in a suite they are answers."""
    suite = load_suite(_write(tmp_path, GOOD))
    assert suite.prompts[4].expect.any == ["one", "1"]
    assert suite.prompts[5].expect.any == ["yes"] and suite.prompts[5].expect.none == ["no"]


def test_sha256_follows_the_bytes(tmp_path):
    first = load_suite(_write(tmp_path, GOOD)).sha256
    second = load_suite(_write(tmp_path, GOOD + "# a comment\n")).sha256
    assert first != second


def test_per_prompt_max_new_tokens_overrides_the_default(tmp_path):
    text = _patch("    question: Describe the image.\n", "    question: Describe the image.\n    max_new_tokens: 7\n")
    suite = load_suite(_write(tmp_path, "defaults:\n  max_new_tokens: 20\n" + text))
    assert [suite.max_new_tokens(p) for p in suite.prompts[:2]] == [7, 20]


def test_gate_accepts_diagnoses_in_plain_words(tmp_path):
    suite = load_suite(_write(tmp_path, _patch("  max_fail: 1\n", "  fail_on: [image blind, gibberish]\n")))
    assert suite.gate.fail_on == ["image_blind", "gibberish"]


def test_other_mix_loads_with_a_warning(tmp_path, capsys):
    text = _patch("  - {id: r2, category: reasoning,", "  - {id: r2, category: vqa,")
    path = _write(tmp_path, text)
    suite = load_suite(path)
    assert suite.counts() == {"captioning": 3, "vqa": 4, "reasoning": 1, "refusal": 2}
    assert len(suite.warnings()) == 1 and "3/3/2/2" in suite.warnings()[0]
    assert validate_command(str(path)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "OK: tiny: 10 prompts (captioning 3, vqa 4, reasoning 1, refusal 2)"
    assert lines[1].startswith("warning: category mix is captioning 3, vqa 4, reasoning 1, refusal 2")


def test_prompt_with_nothing_to_check_warns(tmp_path):
    suite = load_suite(_write(tmp_path, _patch(", reference: a red circle}", "}")))
    assert suite.warnings() == ["prompts[2] (c3): no expect and no reference, so nothing checks its answer"]


# ------------------------------------------------------------------ bad suites: one line each


@pytest.mark.parametrize(
    "old, new, field, problem",
    [
        ("name: tiny\n", "name: tiny\ncolour: red\n", "colour",
         "unknown key; expected one of: name, description, defaults, gate, prompts"),
        ("    question: Describe the image.\n", "    question: Describe the image.\n    hint: red\n",
         "prompts[0].hint",
         "unknown key; expected one of: id, category, image, question, expect, reference, max_new_tokens"),
        ("      any: [red]\n", "      any: [red]\n      anyof: [red]\n", "prompts[0].expect.anyof",
         "unknown key; expected one of: any, all, none, regex, refuse, min_words, max_words"),
        ("    category: captioning\n", "    category: joke\n", "prompts[0].category", "unknown value 'joke'; expected"),
        ("{id: c3,", "{id: c1,", "prompts[2].id", "duplicate id 'c1' (first used by prompts[0])"),
        ("    image: images/a.png\n", "    image: images/cat.png\n", "prompts[0].image",
         "file not found: images/cat.png"),
        ("    image: images/a.png\n", "    image: ../x.png\n", "prompts[0].image",
         "must stay inside the suite's folder: ../x.png"),
        ("    image: images/a.png\n", "    image: images/../../x.png\n", "prompts[0].image", "must stay inside"),
        ("    image: images/a.png\n", "    image: /tmp/x.png\n", "prompts[0].image", "not absolute: /tmp/x.png"),
        ("    image: images/a.png\n", "    image: images\n", "prompts[0].image", "not a file: images"),
        ('      regex: "red (circle|disc)"\n', '      regex: "red (circle"\n', "prompts[0].expect.regex",
         "bad regex 'red (circle': missing ), unterminated subpattern"),
        ("      any: [red]\n", "      any: [red, '  ']\n", "prompts[0].expect.any", "empty keyword"),
        ("{min_words: 1, max_words: 5}", "{min_words: 6, max_words: 5}", "prompts[7].expect",
         "min_words 6 is more than max_words 5"),
        ("    question: Describe the image.\n", "", "prompts[0].question", "missing"),
        ("name: tiny\n", "", "name", "missing"),
        ("  max_fail: 1\n", "  max_fail: -1\n", "gate.max_fail", "greater than or equal to 0"),
        ("  max_fail: 1\n", "  fail_on: [sadness]\n", "gate.fail_on", "unknown diagnosis 'sadness'"),
        ("{refuse: true}}\n  - {id: f2", "{refuse: maybe}}\n  - {id: f2", "prompts[8].expect.refuse", "valid boolean"),
        ("id: c2,", "id: c 2,", "prompts[1].id", "'c 2' is not a name: use letters"),
    ],
)
def test_bad_suite_gives_one_line_naming_file_and_field(tmp_path, capsys, old, new, field, problem):
    (tmp_path / "x.png").write_bytes(b"")  # so ../x.png exists: the error is the escape, not a missing file
    (tmp_path / "suite").mkdir()
    path = _write(tmp_path / "suite", _patch(old, new))
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}: "), message
    assert problem in message
    assert validate_command(str(path)) == 2
    out = capsys.readouterr()
    assert out.out == "" and out.err == message + "\n"


@pytest.mark.parametrize(
    "content, problem",
    [
        (b"", "empty file (0 bytes): images/bad.png"),
        (b"\x13\x37 these are not the bytes of an image \x00\xff", "not a readable image: images/bad.png"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "not a readable image: images/bad.png"),
    ],
)
def test_unreadable_image(tmp_path, content, problem):
    path = _write(tmp_path, _patch("    image: images/a.png\n", "    image: images/bad.png\n"))
    (tmp_path / "images" / "bad.png").write_bytes(content)
    with pytest.raises(SuiteError, match=rf"^{re.escape(f'{path}: prompts[0].image: {problem}')}"):
        load_suite(path)


def test_symlink_out_of_the_folder_is_an_escape(tmp_path):
    outside = tmp_path / "outside.png"
    Image.new("RGB", (8, 8)).save(outside)
    root = tmp_path / "suite"
    root.mkdir()
    path = _write(root, _patch("    image: images/a.png\n", "    image: images/link.png\n"))
    os.symlink(outside, root / "images" / "link.png")
    with pytest.raises(SuiteError, match=r"prompts\[0\]\.image: must stay inside the suite's folder: images/link.png$"):
        load_suite(path)


@pytest.mark.parametrize(
    "text, message",
    [
        ("name: tiny\ndescription: a: b\n", "yaml: mapping values are not allowed here (line 2)"),
        ("name: tiny\nprompts: [\n", "yaml: expected the node content, but found '<stream end>' (line 3)"),
        ("name: tiny\nname: again\n", "yaml: duplicate key 'name' (line 2)"),
        ("- name: tiny\n", "yaml: the document is a list, not a mapping of name, prompts, ..."),
        ("just words\n", "yaml: the document is a str, not a mapping of name, prompts, ..."),
        ("# nothing here\n", "yaml: the document is empty"),
    ],
)
def test_bad_yaml(tmp_path, capsys, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(SuiteError) as e:
        load_suite(path)
    assert str(e.value) == f"{path}: {message}"
    assert validate_command(str(path)) == 2
    assert capsys.readouterr().err == f"{path}: {message}\n"


def test_missing_suite_file(capsys):
    with pytest.raises(SuiteError, match=r"^nowhere/x\.yaml: file not found$"):
        load_suite("nowhere/x.yaml")
    assert validate_command("nowhere/x.yaml") == 2
    assert capsys.readouterr().err == "nowhere/x.yaml: file not found\n"


def test_several_problems_name_the_first_and_count_the_rest(tmp_path):
    text = _patch("name: tiny\n", "name: tiny\ncolour: red\nsize: 3\n")
    with pytest.raises(SuiteError) as e:
        load_suite(_write(tmp_path, text))
    assert str(e.value).endswith(": colour: unknown key; expected one of: name, description, defaults, gate, prompts"
                                 " (and 1 more)")
    assert len(e.value.problems) == 2


def test_loading_a_suite_imports_no_torch():
    """`vibes-eval validate` must stay fast: the suite module may not pull in torch or transformers."""
    code = ("import sys, vibes_eval.suite.schema as s; s.load_suite(sys.argv[1]); "
            "print(sorted({'torch', 'transformers'} & set(sys.modules)))")
    args = [sys.executable, "-c", code, str(SUITES / "shapes.yaml")]
    out = subprocess.run(args, capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_a_misspelt_key_is_named_before_the_missing_one(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text("name: x\nprompts:\n  - id: a\n    categroy: vqa\n    image: i.png\n    question: q\n")
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert "prompts[0].categroy: unknown key" in str(err.value)


def test_a_bundled_suite_by_name_unless_a_file_of_that_name_exists(tmp_path, monkeypatch):
    from vibes_eval.errors import SuiteError
    from vibes_eval.resources import bundled_suite
    from vibes_eval.suite.schema import load_suite

    monkeypatch.chdir(tmp_path)
    shapes = load_suite("shapes")
    assert shapes.name == "shapes" and load_suite("default").name == "default"
    assert all(bundled_suite("shapes").parent in shapes.image_path(p).parents for p in shapes.prompts)
    with pytest.raises(SuiteError, match=r"^shape: file not found \(the bundled suites: default, shapes\)$"):
        load_suite("shape")
    (tmp_path / "shapes").write_text("name: [")  # a file of that name is what the user meant
    with pytest.raises(SuiteError, match="^shapes: "):
        load_suite("shapes")
