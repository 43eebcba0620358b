"""`vibes-eval run` end to end on the toy zoo: files, keys, exit codes, bad input, the detection matrix."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers import SHAPES

from vibes_eval.cli.main import main

KEYS = {"schema_version", "checkpoint", "suite", "fingerprint", "prompts", "signals", "verdict"}


def run(*argv: str) -> int:
    return main(["run", *argv, "--quiet"])


@pytest.fixture(scope="session")
def scorecards(zoo_dir, tmp_path_factory):
    """Every variant run once with the shapes suite: {variant: (exit code, scorecard dict, folder)}."""
    from vibes_eval.toy.variants import VARIANTS

    out = {}
    root = tmp_path_factory.mktemp("reports")
    for name in VARIANTS:
        folder = root / name
        code = run(str(zoo_dir / name), "--suite", str(SHAPES), "--out", str(folder), "--junit", str(folder / "junit.xml"))
        out[name] = (code, json.loads((folder / "scorecard.json").read_text()), folder)
    return out


def test_healthy_passes_and_writes_both_files(scorecards):
    code, sc, folder = scorecards["healthy"]
    assert code == 0, sc["verdict"]
    assert KEYS <= set(sc)
    assert sc["verdict"]["status"] == "pass" and sc["verdict"]["diagnoses"] == []
    assert len(sc["prompts"]) == 10
    assert {"id", "category", "status", "answer", "signals"} <= set(sc["prompts"][0])
    assert (folder / "scorecard.html").is_file()


def test_fingerprint_names_what_was_loaded(scorecards):
    fp = scorecards["healthy"][1]["fingerprint"]
    assert fp["architecture"] == "LlavaForConditionalGeneration"
    assert fp["loader"] == "hf" and fp["dtype"] == "float32" and fp["device"] == "cpu"
    assert fp["visual_tokens"] == 16
    assert fp["rendered_prompt"] == "USER: <image>\n{question} ASSISTANT:"
    assert fp["parameters"]["projector"] == 96 * 128 + 128 + 128 * 128 + 128
    assert all(v.startswith("sha256:") for v in fp["weights"].values())


@pytest.mark.parametrize(
    "variant, code, diagnoses",
    [
        ("healthy", 0, set()),
        ("zero-projector", 1, {"projector_disconnected"}),
        ("missing-projector", 1, {"projector_disconnected"}),
        ("image-blind", 1, {"image_blind"}),
        ("gibberish", 1, {"gibberish"}),
        ("wrong-template", 1, {"template_mismatch"}),
    ],
)
def test_detection_matrix(scorecards, variant, code, diagnoses):
    got_code, sc, _ = scorecards[variant]
    assert got_code == code, sc["verdict"]
    assert diagnoses <= set(sc["verdict"]["diagnoses"]), sc["verdict"]
    if not diagnoses:
        assert sc["verdict"]["diagnoses"] == []


def test_disconnected_is_caught_as_disconnected_or_blind(scorecards):
    code, sc, _ = scorecards["disconnected"]
    assert code == 1
    assert {"projector_disconnected", "image_blind"} & set(sc["verdict"]["diagnoses"]), sc["verdict"]


def test_junit_parses_with_a_case_per_prompt_and_probe(scorecards):
    _, sc, folder = scorecards["image-blind"]
    root = ET.parse(folder / "junit.xml").getroot()
    cases = root.iter("testcase")
    assert sum(1 for _ in cases) == len(sc["prompts"]) + len(sc["signals"])


def test_same_checkpoint_twice_gives_the_same_verdict_and_signals(zoo_dir, scorecards, tmp_path):
    assert run(str(zoo_dir / "healthy"), "--suite", str(SHAPES), "--out", str(tmp_path)) == 0
    again = json.loads((tmp_path / "scorecard.json").read_text())
    first = scorecards["healthy"][1]
    assert again["verdict"] == first["verdict"]
    assert again["signals"] == first["signals"]
    assert [p["signals"] for p in again["prompts"]] == [p["signals"] for p in first["prompts"]]


def test_swapped_images_fail_expectations_but_not_grounding(zoo_dir, tmp_path):
    """The healthy toy still sees: with the images shuffled between prompts it answers about the image it got."""
    import yaml

    suite_dir = Path(str(SHAPES)).parent
    data = yaml.safe_load(Path(str(SHAPES)).read_text())
    images = [p["image"] for p in data["prompts"]]
    for p, img in zip(data["prompts"], images[1:] + images[:1]):
        p["image"] = img
    shutil.copytree(suite_dir / "images", tmp_path / "images")
    (tmp_path / "swapped.yaml").write_text(yaml.safe_dump(data))
    assert run(str(zoo_dir / "healthy"), "--suite", str(tmp_path / "swapped.yaml"), "--out", str(tmp_path / "r")) == 1
    sc = json.loads((tmp_path / "r" / "scorecard.json").read_text())
    signals = {s["probe"]: s["status"] for s in sc["signals"]}
    assert signals["counterfactual"] == "pass" and signals["image_gain"] != "fail"
    assert not {"image_blind", "projector_disconnected"} & set(sc["verdict"]["diagnoses"])
    assert any(p["status"] == "fail" for p in sc["prompts"])


def test_html_is_self_contained_and_escapes_answers(scorecards, tmp_path):
    from vibes_eval.records import Scorecard
    from vibes_eval.report.html import write_html

    _, sc, folder = scorecards["healthy"]
    html = (folder / "scorecard.html").read_text()
    assert "http://" not in html and "https://" not in html
    evil = Scorecard.model_validate(sc)
    prompts = [p.model_copy(update={"answer": "<script>alert(1)</script>"}) for p in evil.prompts]
    page = write_html(evil.model_copy(update={"prompts": prompts}), tmp_path / "x.html").read_text()
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


# --- bad input: one line, the right exit code, no traceback ----------------------------


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) >= 1 and "Traceback" not in "\n".join(err)
    return err[0]


def test_missing_checkpoint_dir_exits_3_with_a_partial_scorecard(tmp_path, capsys):
    assert run(str(tmp_path / "nope"), "--suite", str(SHAPES), "--out", str(tmp_path / "r")) == 3
    assert "checkpoint directory not found" in _one_line(capsys)
    sc = json.loads((tmp_path / "r" / "scorecard.json").read_text())
    assert sc["verdict"]["diagnoses"] == ["load_error"]


def test_folder_without_config_exits_3(tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "README.md").write_text("hi")
    assert run(str(tmp_path / "ck"), "--suite", str(SHAPES), "--out", str(tmp_path / "r")) == 3
    line = _one_line(capsys)
    assert "config.json: file not found" in line and "README.md" in line


def test_not_a_llava_checkpoint_exits_3(tmp_path, capsys):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "config.json").write_text(json.dumps({"architectures": ["BertForMaskedLM"], "model_type": "bert"}))
    assert run(str(tmp_path / "ck"), "--suite", str(SHAPES), "--out", str(tmp_path / "r")) == 3
    assert "BertForMaskedLM" in _one_line(capsys)


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_weight_file_exits_3_naming_the_file(zoo_dir, tmp_path, capsys, damage):
    ck = tmp_path / "ck"
    shutil.copytree(zoo_dir / "healthy", ck)
    weights = ck / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 10)
    assert run(str(ck), "--suite", str(SHAPES), "--out", str(tmp_path / "r")) == 3
    assert "model.safetensors" in _one_line(capsys)
    assert (tmp_path / "r" / "scorecard.json").is_file()


def test_bad_suite_exits_2_before_loading(zoo_dir, tmp_path, capsys):
    (tmp_path / "s.yaml").write_text("name: x\nprompts: [\n")
    assert run(str(zoo_dir / "healthy"), "--suite", str(tmp_path / "s.yaml"), "--out", str(tmp_path / "r")) == 2
    line = _one_line(capsys)
    assert line.startswith("vibes-eval: ") and "s.yaml: yaml:" in line
    assert not (tmp_path / "r").exists()


def test_unknown_adapter_and_template_are_usage_errors(zoo_dir, tmp_path, capsys):
    assert run(str(zoo_dir / "healthy"), "--suite", str(SHAPES), "--adapter", "nope", "--out", str(tmp_path / "a")) == 2
    assert "--adapter: unknown profile 'nope'" in _one_line(capsys)
    assert run(str(zoo_dir / "healthy"), "--suite", str(SHAPES), "--template", "nope", "--out", str(tmp_path / "b")) == 2
    assert "--template: unknown template 'nope'" in _one_line(capsys)


def test_several_checkpoints_side_by_side(zoo_dir, tmp_path):
    code = run(str(zoo_dir / "healthy"), str(zoo_dir / "zero-projector"), "--suite", str(SHAPES), "--out", str(tmp_path))
    assert code == 1
    html = (tmp_path / "compare.html").read_text()
    assert "healthy" in html and "zero-projector" in html
    assert (tmp_path / "healthy" / "scorecard.json").is_file() and (tmp_path / "zero-projector" / "scorecard.json").is_file()


@pytest.mark.parametrize("variant, code", [("healthy", 0), ("zero-projector", 1)])
def test_the_command_exits_fast_with_its_code_and_everything_written(zoo_dir, tmp_path, variant, code):
    """`python -m vibes_eval run` ends with os._exit once torch is loaded: the exit code, the
    reports and the whole terminal output must survive it."""
    import subprocess
    import sys

    out = tmp_path / "r"
    proc = subprocess.run([sys.executable, "-m", "vibes_eval", "run", str(zoo_dir / variant), "--out", str(out),
                           "--junit", str(tmp_path / "j.xml")], capture_output=True, text=True, timeout=180)
    assert proc.returncode == code, proc.stderr[-2000:]
    assert json.loads((out / "scorecard.json").read_text())["verdict"]["exit_code"] == code
    assert (out / "scorecard.html").read_text().rstrip().endswith("</html>")
    assert (tmp_path / "j.xml").read_text().rstrip().endswith("</testsuites>")
    assert "fingerprint" in proc.stdout  # the table's last line (stdout to a pipe is block-buffered)
    assert "scorecard.html" in proc.stderr


def test_wrong_image_token_count_is_image_token_mismatch(zoo_dir, tmp_path):
    """A processor that inserts 15 image tokens for a model that makes 16 features: exit 3, named."""
    import shutil

    ckpt = tmp_path / "mismatch"
    shutil.copytree(zoo_dir / "healthy", ckpt)
    cfg = json.loads((ckpt / "processor_config.json").read_text())
    cfg["num_additional_image_tokens"] = 0  # the CLS token is not counted: one image token short
    (ckpt / "processor_config.json").write_text(json.dumps(cfg))
    out = tmp_path / "r"
    assert main(["run", str(ckpt), "--out", str(out), "--quiet"]) == 3
    sc = json.loads((out / "scorecard.json").read_text())
    assert "image_token_mismatch" in sc["verdict"]["diagnoses"]
    assert "tokens: 15, features 16" in sc["prompts"][0]["error"]


def test_a_profiler_still_gets_its_data(zoo_dir, tmp_path):
    """Under cProfile (or coverage, or a tracer) the command exits normally, so they can write their data."""
    import subprocess
    import sys

    prof = tmp_path / "run.prof"
    proc = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "vibes_eval", "run",
                           str(zoo_dir / "healthy"), "--out", str(tmp_path / "r"), "--quiet", "--no-grounding"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert prof.is_file() and prof.stat().st_size > 0
