"""`vibes-eval compare`: several saved scorecards side by side, with no torch in the process."""

from __future__ import annotations

import argparse
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO, prompt_result
from PIL import Image

from vibes_eval.cli.compare import add_compare_parser, compare_command, compare_scorecards
from vibes_eval.errors import CompareError
from vibes_eval.records import Scorecard, Signal, Status, Verdict
from vibes_eval.report.compare import (
    column_labels,
    fingerprint_diff,
    load_reports,
    prompt_rows,
    render_compare,
    signal_rows,
    verdict_rows,
    worst_exit_code,
)
from vibes_eval.report.compare_html import render_compare_html, write_compare_html

PASS, WARN, FAIL, ERROR = Status.PASS, Status.WARN, Status.FAIL, Status.ERROR
XSS = "<script>alert(1)</script>"


def _fingerprint(template: str, dtype: str, tokens: int, ratio: float, weights: str) -> dict:
    return {
        "architecture": "LlavaForConditionalGeneration",
        "model_type": "llava",
        "loader": "hf",
        "template": template,
        "template_source": "profile",
        "dtype": dtype,
        "device": "cpu",
        "parameters": {"vision_tower": 300_000, "projector": 29_000, "llm": 1_200_000},
        "missing_keys": [],
        "weights": {"model.safetensors": f"sha256:{weights * 64}"},
        "versions": {"torch": "2.13.0", "transformers": "5.0.0"},
        "projector": {"found": True, "all_zero": ratio == 0, "norm_ratio": ratio},
        "visual_tokens": tokens,
        "rendered_prompt": f"{template}: <image>\n{{question}}",
    }


def _scorecard(ckpt: str, prompts, fingerprint, signals, status: Status, code: int, diagnoses=()) -> Scorecard:
    return Scorecard(
        checkpoint=ckpt, suite={"name": "shapes", "path": "suites/shapes.yaml", "sha256": "ab" * 32},
        fingerprint=fingerprint, prompts=prompts, signals=signals,
        verdict=Verdict(status=status, diagnoses=list(diagnoses), summary=[f"{status.value} summary"], exit_code=code),
        created="2025-01-02T03:04:05Z", seconds=1.5,
    )


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "red.png"
    Image.new("RGB", (64, 64), (220, 30, 30)).save(path)
    return path


@pytest.fixture
def healthy(image) -> Scorecard:
    return _scorecard(
        "/ckpts/toy-healthy",
        [prompt_result("color", answer="Red.", status=PASS, image=image), prompt_result("shape", answer="A circle.", status=PASS,
                                                                                        image=image),
         prompt_result("count", answer="Three.", status=PASS, image=image), prompt_result("refuse", answer="I can't help with that.",
                                                                                          status=PASS, image=image, category="refusal")],
        _fingerprint("llava-1.5-hf", "float32", 16, 26.0, "a"),
        [Signal(probe="grounding", status=PASS, score=0.97, reason="Answers follow the image."),
         Signal(probe="loader.projector", status=PASS, score=1.0, reason="Projector weights look trained.")],
        PASS, 0,
    )


@pytest.fixture
def broken(image) -> Scorecard:
    return _scorecard(
        "/ckpts/toy-fp16",
        [prompt_result("color", answer=" red", status=PASS, image=image), prompt_result("shape", answer="!!!!!!!!", status=FAIL,
                                                                                        image=image),
         prompt_result("count", answer="Three.", status=WARN, image=image), prompt_result("extra", answer="Hello.", status=PASS,
                                                                                          image=image, category="captioning")],
        _fingerprint("default", "float16", 15, 0.0, "b"),
        [Signal(probe="grounding", status=FAIL, score=0.03, reason="Same answer with a blank image."),
         Signal(probe="loader.projector", status=PASS, score=1.0, reason="Projector weights look trained.")],
        FAIL, 1, ["numeric overflow", "template mismatch"],
    )


@pytest.fixture
def crashed(image) -> Scorecard:
    return _scorecard(
        "/other/toy-healthy",
        [prompt_result("color", answer=f"{XSS} see http://evil.example/x", status=FAIL, image=image),
         prompt_result("shape", answer=None, status=ERROR, image=image,
                       error="RuntimeError: Image features and image tokens do not match")],
        {"architecture": "LlavaForConditionalGeneration", "dtype": "float32"},
        [], ERROR, 3, ["image-token mismatch"],
    )


def _save(sc: Scorecard, folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "scorecard.json").write_text(sc.model_dump_json())
    return folder


def _terminal(scorecards, **kw) -> str:
    from rich.console import Console

    console = Console(width=120, file=io.StringIO(), color_system=None)
    render_compare(scorecards, console, **kw)
    return console.file.getvalue()


# ---------------------------------------------------------------- rows


def test_prompt_rows_union_in_first_order_with_diff_flags(healthy, broken):
    rows = prompt_rows([healthy, broken])
    assert [r.id for r in rows] == ["color", "shape", "count", "refuse", "extra"]
    assert {r.id: r.differs for r in rows} == {"color": False, "shape": True, "count": True, "refuse": True, "extra": True}
    shape = rows[1]
    assert [c.answer for c in shape.cells] == ["A circle.", "!!!!!!!!"] and shape.odd == (False, True)
    refuse, extra = rows[3], rows[4]
    assert refuse.cells[1] is None and extra.cells[0] is None
    assert extra.first.category == "captioning"


def test_only_diff_keeps_the_rows_that_differ(healthy, broken):
    assert [r.id for r in prompt_rows([healthy, broken], only_diff=True)] == ["shape", "count", "refuse", "extra"]
    assert prompt_rows([healthy, healthy], only_diff=True) == []
    assert [r.key for r in fingerprint_diff([healthy, healthy], only_diff=True)] == []
    assert [r.probe for r in signal_rows([healthy, broken], only_diff=True)] == ["grounding"]


def test_odd_cells_are_the_minority(healthy, broken, crashed):
    color = prompt_rows([healthy, broken, crashed])[0]
    assert color.differs and color.odd == (False, False, True)  # "Red." and " red" agree


def test_fingerprint_diff_flattens_and_puts_headline_keys_first(healthy, broken):
    rows = fingerprint_diff([healthy, broken])
    keys = [r.key for r in rows]
    assert keys[:8] == ["architecture", "loader", "template", "template_source", "dtype", "device",
                        "visual_tokens", "rendered_prompt"]
    assert keys.index("projector.norm_ratio") < keys.index("parameters.llm") < keys.index("versions.transformers") \
        < keys.index("weights") < keys.index("model_type")
    assert not any(k.startswith("weights.") for k in keys)  # per-file hashes summarised in one row
    by_key = {r.key: r for r in rows}
    differing = {r.key for r in rows if r.differs}
    assert differing == {"template", "dtype", "visual_tokens", "rendered_prompt", "projector.norm_ratio",
                         "projector.all_zero", "weights"}
    assert by_key["projector.norm_ratio"].values == ("26.0", "0.0")
    assert by_key["parameters.llm"].values == ("1200000", "1200000")
    assert by_key["missing_keys"].values == ("[]", "[]")
    assert by_key["weights"].values[0].startswith("1 file, digest ")


def test_fingerprint_key_missing_in_one_run_differs(healthy, crashed):
    row = {r.key: r for r in fingerprint_diff([healthy, crashed])}["template"]
    assert row.values == ("llava-1.5-hf", None) and row.differs


def test_verdict_rows_and_worst_exit_code(healthy, broken, crashed):
    rows = {r.key: r for r in verdict_rows([healthy, broken])}
    assert rows["verdict"].values == ("PASS", "FAIL") and rows["verdict"].differs
    assert rows["exit code"].values == ("0", "1")
    assert rows["diagnoses"].values == ("none", "numeric overflow, template mismatch")
    assert not rows["suite"].differs
    assert worst_exit_code([healthy]) == 0
    assert worst_exit_code([healthy, broken]) == 1
    assert worst_exit_code([crashed, healthy, broken]) == 3


def test_signal_rows(healthy, broken, crashed):
    rows = signal_rows([healthy, broken, crashed])
    assert [(r.probe, r.differs) for r in rows] == [("grounding", True), ("loader.projector", True)]
    assert [None if s is None else s.status for s in rows[0].cells] == [PASS, FAIL, None]


@pytest.mark.parametrize("checkpoints, sources, expected", [
    (["/a/x", "/b/y"], None, ["x", "y"]),
    (["/a/x", "/b/x"], None, ["a/x", "b/x"]),
    (["/a/x", "/b/x"], ["reports/x-1", "reports/x-2"], ["x (x-1)", "x (x-2)"]),
    (["/a/x", "/a/x"], None, ["a/x #1", "a/x #2"]),
])
def test_column_labels_are_unique(healthy, checkpoints, sources, expected):
    scorecards = [healthy.model_copy(update={"checkpoint": c}) for c in checkpoints]
    assert column_labels(scorecards, sources) == expected


# ---------------------------------------------------------------- terminal


def test_terminal_shows_verdict_prompts_fingerprint_signals(healthy, broken):
    out = _terminal([healthy, broken])
    assert out.index("verdict") < out.index("prompts") < out.index("fingerprint") < out.index("checkpoint signals")
    assert "toy-healthy" in out and "toy-fp16" in out
    assert "numeric overflow, template mismatch" in out
    assert "≠ shape" in out and "!!!!!!!!" in out and "≠ 4 of 5 prompts differ" in out
    assert "≠ template" in out and "≠ projector.norm_ratio" in out and "float16" in out
    assert "  device" in out and "≠ device" not in out  # headline keys shown even when alike
    assert "≠ model_type" not in out and "model_type" not in out  # alike and not headline: HTML only
    assert "≠ grounding" in out
    assert all(len(line) <= 120 for line in out.splitlines())


def test_terminal_only_diff_and_literal_model_text(healthy, crashed):
    out = _terminal([healthy, crashed], only_diff=True)
    assert XSS in out  # printed as itself (Text, not markup)
    assert "  device" not in out and "≠ template" in out


def test_terminal_highlights_differing_values(healthy, broken):
    from rich.console import Console

    console = Console(width=120, file=io.StringIO(), color_system="standard", force_terminal=True)
    render_compare([healthy, broken], console)
    out = console.file.getvalue()
    assert re.search(r"\x1b\[1;33m\s*float16", out)  # bold yellow
    assert not re.search(r"\x1b\[1;33m\s*float32", out)


# ---------------------------------------------------------------- HTML


def test_html_has_columns_highlights_and_no_url(healthy, broken, crashed, tmp_path):
    path = write_compare_html([healthy, broken, crashed], tmp_path / "out" / "compare.html")
    html = path.read_text()
    for label in ["toy-fp16", "ckpts/toy-healthy", "other/toy-healthy"]:
        assert label in html
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html.lower() and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "http:&#47;&#47;evil.example" in html
    assert html.count('class="odd"') >= 5 and 'class="prompt diff"' in html
    assert "RuntimeError: Image features" in html
    assert html.count('src="data:image/png;base64,') == 5  # one thumbnail per prompt row
    assert "url(" not in html and "<link" not in html


def test_html_only_diff_and_without_thumbnails(healthy, broken):
    html = render_compare_html([healthy, broken], only_diff=True, thumbnails=False)
    assert ">color <" not in html and "shape" in html
    assert "data:image" not in html
    assert "model_type" not in html and "projector.norm_ratio" in html


# ---------------------------------------------------------------- command


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vibes-eval")
    add_compare_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["compare", *argv])


def test_compare_command_exit_code_and_default_html(healthy, broken, tmp_path):
    a = _save(healthy, tmp_path / "reports" / "a")
    b = _save(broken, tmp_path / "reports" / "b")
    from rich.console import Console

    console = Console(width=120, file=io.StringIO(), color_system=None)
    assert compare_command(_args(str(a), str(b / "scorecard.json")), console) == 1
    html = tmp_path / "reports" / "compare.html"
    assert html.is_file() and f"HTML: {html}" in console.file.getvalue()
    assert compare_command(_args(str(a), "--html", str(tmp_path / "x.html")), console) == 0
    assert (tmp_path / "x.html").is_file()


def test_compare_scorecards_writes_next_to_the_runs(healthy, broken, crashed, tmp_path):
    from rich.console import Console

    console = Console(width=120, file=io.StringIO(), color_system=None)
    assert compare_scorecards([healthy, broken, crashed], tmp_path / "runs", console) == 3
    assert (tmp_path / "runs" / "compare.html").is_file() and "toy-fp16" in console.file.getvalue()


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "nope", r"nope: not found"),
    (lambda d: (d / "empty").mkdir() or d / "empty", r"empty/scorecard.json: not found"),
    (lambda d: (d / "bad.json").write_text("{not json") and d / "bad.json", r"bad.json: not a scorecard: Invalid JSON"),
    (lambda d: (d / "odd.json").write_text('{"checkpoint": 3}') and d / "odd.json", r"odd.json: not a scorecard: checkpoint: "),
])
def test_bad_reports_give_one_line_and_exit_2(healthy, tmp_path, capsys, make, message):
    good = _save(healthy, tmp_path / "good")
    bad = make(tmp_path)
    with pytest.raises(CompareError, match=message):
        load_reports([good, bad])
    assert compare_command(_args(str(good), str(bad))) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vibes-eval: ") and re.search(message, err)


def test_no_reports_is_a_usage_error(capsys):
    assert compare_command(argparse.Namespace(reports=[], only_diff=False, html=None)) == 2
    assert capsys.readouterr().err.count("\n") == 1
    with pytest.raises(SystemExit) as e:
        _args()
    assert e.value.code == 2


# ---------------------------------------------------------------- no torch

_NO_TORCH = "import sys; sys.modules['torch'] = None; sys.modules['transformers'] = None; "


def _run_without_torch(code: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(REPO), "COLUMNS": "120", "PATH": "/usr/bin:/bin", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-c", _NO_TORCH + code], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


def test_compare_runs_without_torch(healthy, broken, tmp_path):
    a, b = _save(healthy, tmp_path / "a"), _save(broken, tmp_path / "b")
    code = ("import argparse; from vibes_eval.cli.compare import add_compare_parser, compare_command; "
            "p = argparse.ArgumentParser(); add_compare_parser(p.add_subparsers(dest='command')); "
            f"raise SystemExit(compare_command(p.parse_args(['compare', {str(a)!r}, {str(b)!r}])))")
    out = _run_without_torch(code, tmp_path)
    assert out.returncode == 1, out.stderr
    assert "toy-fp16" in out.stdout and "≠ template" in out.stdout and (tmp_path / "compare.html").is_file()


def test_cli_compare_runs_without_torch(healthy, broken, tmp_path):
    from vibes_eval.cli import main as cli

    if "compare" not in cli.COMMANDS:
        pytest.skip("cli/main.py does not wire `compare` yet (add_compare_parser + COMMANDS['compare'])")
    a, b = _save(healthy, tmp_path / "a"), _save(broken, tmp_path / "b")
    out = _run_without_torch(f"from vibes_eval.cli.main import main; raise SystemExit(main(['compare', {str(a)!r}, {str(b)!r}]))", tmp_path)
    assert out.returncode == 1, out.stderr
    assert "toy-healthy" in out.stdout and "toy-fp16" in out.stdout and "≠ shape" in out.stdout
