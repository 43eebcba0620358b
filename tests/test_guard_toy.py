"""--baseline, CI summaries and `vibes-eval watch` on the toy zoo, through the command line."""

from __future__ import annotations

import json
import shlex
import shutil
import threading
import time
from pathlib import Path

import pytest
import yaml
from bounded import joined
from browser import headless_page
from helpers import REPO

from vibes_eval.cli.main import _parser, main
from vibes_eval.records import load_scorecard


@pytest.fixture(scope="module")
def healthy_report(zoo_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("baseline") / "healthy"
    assert main(["run", str(zoo_dir / "healthy"), "--out", str(out), "--quiet"]) == 0
    return out


def test_healthy_against_itself_passes(zoo_dir, healthy_report, tmp_path, capsys):
    code = main(["run", str(zoo_dir / "healthy"), "--out", str(tmp_path / "r"), "--baseline", str(healthy_report)])
    out = capsys.readouterr().out
    assert code == 0
    sc = load_scorecard(tmp_path / "r")
    assert sc.baseline is not None and not sc.baseline.regressed and "regression" not in sc.verdict.diagnoses
    assert sc.baseline.prompts == [] and all(r.status.value == "pass" for r in sc.baseline.rows)
    assert "against the baseline" in out


def test_image_blind_against_healthy_is_a_regression(zoo_dir, healthy_report, tmp_path, capsys):
    code = main(["run", str(zoo_dir / "image-blind"), "--out", str(tmp_path / "r"),
                 "--baseline", str(healthy_report / "scorecard.json")])
    out = capsys.readouterr().out
    assert code == 1
    sc = load_scorecard(tmp_path / "r")
    assert {"regression", "image_blind"} <= set(sc.verdict.diagnoses)
    gain = next(r for r in sc.baseline.rows if r.name == "image_gain")
    assert gain.status.value == "fail" and gain.before > 2 * gain.after
    assert "image_gain" in out and gain.change.split()[0] in out  # the before/after table on the terminal
    assert any(c.key == "weights" for c in sc.baseline.fingerprint)  # other weights: the fingerprint says so
    assert 'id="baseline"' in (tmp_path / "r" / "scorecard.html").read_text()


def test_evaluate_with_a_baseline_gives_the_verdict_run_gives(zoo_dir, healthy_report, tmp_path):
    """The library and the command line decide the regression in one place: the same verdict, signal for signal."""
    from vibes_eval import BaselineError, evaluate

    assert main(["run", str(zoo_dir / "image-blind"), "--out", str(tmp_path / "r"), "--baseline", str(healthy_report),
                 "--quiet"]) == 1
    by_cli = load_scorecard(tmp_path / "r")
    by_api = evaluate(zoo_dir / "image-blind", baseline=healthy_report)
    assert by_api.verdict == by_cli.verdict and "regression" in by_api.verdict.diagnoses
    assert by_api.baseline.model_dump() == by_cli.baseline.model_dump()
    assert evaluate(zoo_dir / "image-blind").verdict != by_api.verdict  # the baseline is what adds the regression
    with pytest.raises(BaselineError, match="--baseline: .*not found"):  # exit 2 before anything loads
        evaluate(zoo_dir / "image-blind", baseline=tmp_path / "nowhere")


def test_baseline_from_another_suite_is_exit_2(zoo_dir, healthy_report, tmp_path, capsys):
    suites = shutil.copytree(REPO / "suites", tmp_path / "suites")
    with open(suites / "shapes.yaml", "a") as f:
        f.write("# edited: another suite\n")
    args = ["run", str(zoo_dir / "healthy"), "--suite", str(suites / "shapes.yaml"), "--out", str(tmp_path / "r"),
            "--baseline", str(healthy_report)]
    assert main(args) == 2
    assert "ran suite shapes sha256" in capsys.readouterr().err and not (tmp_path / "r").exists()
    assert main([*args, "--baseline-any-suite", "--quiet"]) == 0


def test_missing_baseline_is_exit_2(zoo_dir, tmp_path, capsys):
    assert main(["run", str(zoo_dir / "healthy"), "--baseline", str(tmp_path / "nope"), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err.strip() == f"vibes-eval: --baseline: {tmp_path / 'nope'}: not found"


def test_github_step_summary_for_a_broken_toy(zoo_dir, tmp_path, monkeypatch, capsys):
    step = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    code = main(["run", str(zoo_dir / "zero-projector"), "--out", str(tmp_path / "r"), "--quiet",
                 "--summary-md", str(tmp_path / "copy.md")])
    out = capsys.readouterr().out
    assert code == 1
    md = step.read_text()
    assert "vibes-eval FAIL" in md and "`projector_disconnected`" in md and "| prompt | category | status |" in md
    assert md == (tmp_path / "copy.md").read_text()
    assert "::error title=vibes-eval projector_disconnected::" in out


def test_example_workflow_commands_parse():
    flow = yaml.safe_load((REPO / "examples" / "github-actions.yml").read_text())
    runs = [s["run"] for job in flow["jobs"].values() for s in job["steps"] if "run" in s]
    commands = [shlex.split(r, comments=True) for r in runs if r.startswith("vibes-eval ")]
    assert [c[1] for c in commands] == ["watch", "run"]
    for argv in commands:
        _parser().parse_args(argv[1:])  # argparse exits on an unknown flag
    uploads = [s for job in flow["jobs"].values() for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact")]
    assert uploads and "reports/" in uploads[0]["with"]["path"] and uploads[0]["if"] == "always()"


# ---------------------------------------------------------------- watch


def _write_checkpoints(zoo_dir: Path, root: Path, plan: list[tuple[int, str]]) -> None:
    """What a trainer does: a checkpoint folder filled file by file, trainer_state.json last."""
    for step, variant in plan:
        time.sleep(0.3)
        tmp = root / f"tmp-checkpoint-{step}"
        shutil.copytree(zoo_dir / variant, tmp)
        (tmp / "vibes-eval-toy.json").unlink(missing_ok=True)  # a trainer writes no toy marker: the watcher passes --suite
        dest = tmp.rename(root / f"checkpoint-{step}")
        (dest / "trainer_state.json").write_text(json.dumps({"global_step": step}))


def test_watch_a_run_while_it_writes(zoo_dir, tmp_path):
    root = tmp_path / "run"
    root.mkdir()
    plan = [(10, "healthy"), (20, "zero-projector"), (30, "healthy")]
    writer = threading.Thread(target=_write_checkpoints, args=(zoo_dir, root, plan))
    writer.start()
    try:
        code = main(["watch", str(root), "--suite", str(REPO / "suites" / "shapes.yaml"), "--every-new",
                     "--until-idle", "4", "--poll", "0.2"])
    finally:
        joined(writer, 60, "the thread writing checkpoints")
    assert code == 1
    data = json.loads((root / "vibes" / "trend.json").read_text())
    assert [e["step"] for e in data["entries"]] == [10, 20, 30]
    assert [e["status"] for e in data["entries"]] == ["pass", "fail", "pass"]
    assert data["entries"][1]["diagnoses"] == ["projector_disconnected"] and data["worst_exit_code"] == 1
    html = (root / "vibes" / "trend.html").read_text()
    assert html.count("<svg ") >= 5 and 'href="checkpoint-20/scorecard.html"' in html
    for step in (10, 20, 30):
        assert (root / "vibes" / f"checkpoint-{step}" / "scorecard.html").is_file()
    _open_in_chromium(root / "vibes" / "trend.html")


def _open_in_chromium(page_path: Path) -> None:
    with headless_page(page_path) as opened:
        page = opened.page
        assert page.locator("svg").count() >= 5
        assert page.locator("svg circle").count() >= 3
        assert page.locator("tr#step-20 .badge").inner_text() == "FAIL"
    assert opened.errors == []
    assert opened.requests == [opened.url]


def test_watch_original_llava_repo_checkpoints(zoo_dir, tmp_path):
    """The original LLaVA repo's scripts save stage-1 checkpoints as config.json + mm_projector.bin and LoRA ones as adapters."""
    from vibes_eval.toy.llava_repo_format import write_llava_repo

    layouts = write_llava_repo(zoo_dir / "healthy", tmp_path / "layouts")
    root = tmp_path / "run"
    root.mkdir()
    shutil.copytree(layouts["stage1"], root / "checkpoint-50")  # no trainer_state.json: complete once it settles
    shutil.copytree(layouts["lora"], root / "checkpoint-100")
    code = main(["watch", str(root), "--every-new", "--until-idle", "0", "--settle", "0",
                 "--base", str(layouts["base"]), "--vision-tower", str(layouts["vision_tower"]),
                 "--template", "llava-1.5-hf", "--suite", str(REPO / "suites" / "shapes.yaml")])
    data = json.loads((root / "vibes" / "trend.json").read_text())
    assert [(e["step"], e["status"]) for e in data["entries"]] == [(50, "pass"), (100, "pass")], data["entries"]
    assert code == 0
