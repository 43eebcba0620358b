"""--baseline, CI summaries and the trend page, on scorecards built by hand (no model, no torch)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vibes_eval.errors import BaselineError
from vibes_eval.judge.baseline import apply_baseline, check_suite, load_baseline
from vibes_eval.judge.metrics import metric_values
from vibes_eval.records import PromptResult, Scorecard, Signal, Status, Verdict
from vibes_eval.report.summary import emit_summaries, scorecard_markdown, workflow_commands
from vibes_eval.report.trend import collect_entries, render_trend_html, write_trend

PASS, FAIL, ERROR = Status.PASS, Status.FAIL, Status.ERROR
SHA = "ab" * 32


def card(gain=2.4, match=0.57, lik=-0.1, fit=0.0, statuses=(PASS, PASS, PASS), verdict=None, template="llava-1.5-hf",
         sha=SHA, answer="Red.") -> Scorecard:
    """A scorecard with the given grounding numbers and prompt statuses."""
    prompts = [PromptResult(id=f"p{i}", category="vqa", question="What color?", image="a.png", image_path="/nope/a.png",
                            answer=answer, status=s) for i, s in enumerate(statuses)]
    signals = [
        Signal(probe="image_gain", status=PASS if gain >= 0.5 else FAIL, reason="gain",
               evidence={"gain_nats_per_token": gain, "threshold": 0.5}),
        Signal(probe="cross_match", status=PASS if match >= 0.25 else FAIL, reason="match",
               evidence={"share": match, "p_value": 0.001 if match >= 0.25 else 0.5, "alpha": 0.01}),
        Signal(probe="likelihood", status=PASS, reason="lik", evidence={"mean_loglik_nats_per_token": lik, "threshold": -4.0}),
        Signal(probe="template_fit", status=PASS, reason="fit", evidence={"margin_nats_per_token": fit}),
    ]
    return Scorecard(checkpoint="/ckpts/toy", suite={"name": "shapes", "sha256": sha},
                     fingerprint={"template": template, "dtype": "float32", "versions": {"torch": "2.13.0"}},
                     prompts=prompts, signals=signals,
                     verdict=verdict or Verdict(status=PASS, summary=["0 prompts failed (gate allows 0)."], exit_code=0),
                     created="2026-12-01T06:00:00+00:00", seconds=1.5)


def save(sc: Scorecard, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scorecard.json").write_text(sc.model_dump_json(indent=2))
    (folder / "scorecard.html").write_text("<!DOCTYPE html><title>x</title>")
    return folder


# ---------------------------------------------------------------- baseline


def test_same_numbers_no_regression():
    before = card()
    after = apply_baseline(card(), before, "base/scorecard.json")
    assert after.verdict == before.verdict
    assert after.baseline is not None and not after.baseline.regressed
    assert {r.name: r.status for r in after.baseline.rows} == {n: PASS for n in ("pass_rate", "image_gain", "cross_match",
                                                                                  "likelihood", "template_fit")}
    assert after.baseline.prompts == [] and after.baseline.fingerprint == []


@pytest.mark.parametrize(("kwargs", "regressed"), [
    ({"gain": 2.4 * 0.71}, False),  # down 29%
    ({"gain": 2.4 * 0.70}, True),  # down 30%: the tolerance
    ({"match": 0.33}, False),  # down 0.24
    ({"match": 0.32}, True),  # down 0.25
    ({"lik": -1.05}, False),
    ({"lik": -1.1}, True),
    ({"fit": 0.6}, True),  # another template now fits 0.6 nats/token better
    ({"gain": 3.0, "match": 0.9}, False),  # better is never a regression
])
def test_tolerances(kwargs, regressed):
    after = apply_baseline(card(**kwargs), card(), "b")
    assert after.baseline.regressed is regressed
    assert ("regression" in after.verdict.diagnoses) is regressed
    assert after.verdict.exit_code == (1 if regressed else 0)
    if regressed:
        name = next(iter(kwargs))
        name = {"gain": "image_gain", "match": "cross_match", "lik": "likelihood", "fit": "template_fit"}[name]
        assert [r.name for r in after.baseline.rows if r.status == FAIL] == [name]
        assert name in after.verdict.summary[-1]


def test_image_gain_drop_is_named_with_before_after():
    after = apply_baseline(card(gain=0.03), card(gain=2.41), "base")
    row = next(r for r in after.baseline.rows if r.name == "image_gain")
    assert (row.before, row.after, row.status) == (2.41, 0.03, FAIL)
    assert row.change == "-2.38 (-99%)" and row.tolerance == "falls by 30% or more"
    assert "image_gain 2.41 -> 0.03" in after.verdict.summary[-1]


def test_prompt_that_passed_and_fails_now_fails_the_gate():
    after = apply_baseline(card(statuses=(PASS, FAIL, PASS)), card(), "base")
    assert after.verdict.status == FAIL and after.verdict.exit_code == 1
    assert after.verdict.diagnoses == ["regression"]
    assert "1 prompt passed in the baseline and fails now: p1." in after.verdict.summary
    assert [(c.id, c.before, c.after) for c in after.baseline.prompts] == [("p1", PASS, FAIL)]


def test_a_prompt_failing_in_both_is_no_regression():
    after = apply_baseline(card(statuses=(PASS, FAIL)), card(statuses=(PASS, FAIL)), "base")
    assert not after.baseline.regressed and after.verdict.exit_code == 0


def test_an_unevaluable_run_keeps_exit_3():
    err = Verdict(status=ERROR, diagnoses=["load_error"], summary=["cannot load"], exit_code=3)
    after = apply_baseline(card(statuses=(PASS, ERROR, PASS), verdict=err), card(), "base")
    assert after.verdict.status == ERROR and after.verdict.exit_code == 3
    assert after.verdict.diagnoses == ["load_error", "regression"]


def test_fingerprint_differences_explain():
    after = apply_baseline(card(template="mistral-instruct"), card(), "base")
    assert [(c.key, c.before, c.after) for c in after.baseline.fingerprint] == [("template", "llava-1.5-hf", "mistral-instruct")]


def test_other_suite_is_a_usage_error(tmp_path):
    base = card(sha="cd" * 32)
    with pytest.raises(BaselineError, match=r"--baseline: b\.json: ran suite shapes sha256 cdcdcdcdcdcd.*--baseline-any-suite"):
        check_suite(base, Path("b.json"), SHA)
    check_suite(base, Path("b.json"), SHA, any_suite=True)  # allowed when asked
    check_suite(card(), Path("b.json"), SHA)


def test_load_baseline_names_the_file(tmp_path):
    with pytest.raises(BaselineError, match=r"^--baseline: .*nowhere: not found$"):
        load_baseline(tmp_path / "nowhere")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(BaselineError, match=r"bad\.json: not a scorecard"):
        load_baseline(tmp_path / "bad.json")
    sc, file = load_baseline(save(card(), tmp_path / "r"))
    assert file == tmp_path / "r" / "scorecard.json" and sc.checkpoint == "/ckpts/toy"


def test_metric_values_leave_out_skipped_probes():
    sc = card()
    skipped = sc.model_copy(update={"signals": [Signal(probe="image_gain", status=Status.SKIP, reason="no logprobs")]})
    assert metric_values(sc) == {"pass_rate": 1.0, "image_gain": 2.4, "cross_match": 0.57, "likelihood": -0.1, "template_fit": 0.0}
    assert metric_values(skipped) == {"pass_rate": 1.0}


# ---------------------------------------------------------------- CI summaries


def test_markdown_summary_escapes_and_bounds():
    evil = "| <script>alert(1)</script> http://x.example/ \x1b[2J" + "long " * 100
    bad = card(gain=0.0, statuses=(PASS, FAIL), answer=evil,
               verdict=Verdict(status=FAIL, diagnoses=["image_blind"], summary=["Image gain 0.00 nats per token."], exit_code=1))
    bad = apply_baseline(bad, card(), "base")
    md = scorecard_markdown(bad, report="reports/x/scorecard.html")
    assert "vibes-eval FAIL" in md and "`image_blind`" in md and "`regression`" in md
    assert "- Image gain 0.00 nats per token." in md
    assert "| p1 | vqa | ❌ fail |" in md
    assert "<script>" not in md and "&lt;script&gt;" in md and "http://" not in md and "\x1b" not in md
    assert "\\| &lt;script" in md  # a | in an answer does not split the row
    assert "| image_gain | 2.400 | 0.000 | -2.40 (-100%) | falls by 30% or more | ❌ fail |" in md
    rows = [line for line in md.splitlines() if line.startswith(("| p0 ", "| p1 "))]
    assert len(rows) == 2 and all(len(r) < 400 for r in rows)


def test_workflow_commands():
    bad = card(verdict=Verdict(status=FAIL, diagnoses=["projector_disconnected", "image_blind"],
                               summary=["100% of\nnothing, 50%"], exit_code=1))
    lines = workflow_commands(bad)
    assert lines[0] == "::error title=vibes-eval projector_disconnected::/ckpts/toy: projector_disconnected. 100%25 of%0Anothing, 50%25"
    assert lines[1].startswith("::error title=vibes-eval image_blind::")
    warned = card(verdict=Verdict(status=Status.WARN, diagnoses=["template_mismatch"], summary=["x"], exit_code=0))
    assert workflow_commands(warned)[0].startswith("::warning title=vibes-eval template_mismatch::")
    too_many = card(verdict=Verdict(status=FAIL, summary=["3 prompts failed (gate allows 0)."], exit_code=1))
    assert workflow_commands(too_many) == ["::error title=vibes-eval fail::/ckpts/toy: 3 prompts failed (gate allows 0)."]
    assert workflow_commands(card()) == []


def test_emit_appends_to_step_summary_and_prints_commands(tmp_path, monkeypatch, capsys):
    step = tmp_path / "step_summary.md"
    step.write_text("# earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step))
    bad = card(verdict=Verdict(status=FAIL, diagnoses=["gibberish"], summary=["answers are not language"], exit_code=1))
    emit_summaries(bad, summary_md=tmp_path / "also.md")
    emit_summaries(card())
    text = step.read_text()
    assert text.startswith("# earlier step\n") and text.count("### ") == 2 and "vibes-eval FAIL" in text and "vibes-eval PASS" in text
    assert (tmp_path / "also.md").read_text().count("### ") == 1
    assert capsys.readouterr().out.splitlines() == ["::error title=vibes-eval gibberish::/ckpts/toy: gibberish. answers are not language"]
    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    emit_summaries(bad)
    assert capsys.readouterr().out == ""  # no workflow commands outside GitHub Actions


# ---------------------------------------------------------------- trend


def _run_dir(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    save(card(gain=2.4), root / "vibes" / "checkpoint-10")
    save(card(gain=2.1, match=0.5), root / "vibes" / "checkpoint-20")
    broken = Verdict(status=FAIL, diagnoses=["projector_disconnected"], summary=["Projector weights are all zero."], exit_code=1)
    save(card(gain=0.0, match=0.12, statuses=(FAIL, FAIL, PASS), verdict=broken), root / "checkpoint-30" / "vibes")  # the callback's layout
    (root / "checkpoint-40").mkdir()  # no scorecard yet
    return root


def test_trend_collects_each_step_once_in_order(tmp_path):
    root = _run_dir(tmp_path)
    older = card(gain=2.0).model_copy(update={"created": "2026-12-01T05:00:00+00:00"})
    save(older, root / "vibes" / "step-30")  # an older check of step 30: the newer scorecard wins
    entries = collect_entries(root)
    assert [e["step"] for e in entries] == [10, 20, 30]
    assert entries[0]["metrics"]["image_gain"] == 2.4 and entries[0]["thresholds"]["image_gain"] == 0.5
    assert entries[0]["html"] == "checkpoint-10/scorecard.html"
    json_path, html_path = write_trend(entries, root / "vibes", title="run")
    data = json.loads(json_path.read_text())
    assert entries[2]["diagnoses"] == ["projector_disconnected"] and data["worst_exit_code"] == 1
    assert [e["step"] for e in data["entries"]] == [10, 20, 30]


def test_trend_keeps_steps_whose_scorecards_were_deleted(tmp_path):
    root = _run_dir(tmp_path)
    write_trend(collect_entries(root), root / "vibes")
    import shutil

    shutil.rmtree(root / "vibes" / "checkpoint-10")  # save_total_limit rotated it away
    entries = collect_entries(root)
    assert [e["step"] for e in entries] == [10, 20, 30] and entries[0]["metrics"]["image_gain"] == 2.4


def test_trend_html_has_plots_thresholds_and_links(tmp_path):
    root = _run_dir(tmp_path)
    entries = collect_entries(root)
    html = render_trend_html(entries, "run <b>")
    assert html.count("<svg ") == 5  # pass rate, image gain, cross-match, likelihood, template fit (these cards have no counterfactual)
    assert 'id="plot-image_gain"' in html and "fails below 0.5" in html and "fails above 1" in html
    assert html.count("<polyline") == 5 and 'class="threshold"' in html
    assert 'href="checkpoint-10/scorecard.html"' in html and 'href="../checkpoint-30/vibes/scorecard.html"' in html
    assert "run &lt;b&gt;" in html and "<script" not in html and "://" not in html
    assert "projector_disconnected" in html and "worst:" in html


def test_trend_command_without_torch(tmp_path):
    root = _run_dir(tmp_path)
    code = ("import sys; from vibes_eval.cli.main import main; rc = main(['trend', sys.argv[1]]);"
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(root)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert "3 steps, worst exit code 1" in proc.stdout
    assert (root / "vibes" / "trend.html").is_file() and (root / "vibes" / "trend.json").is_file()
    empty = subprocess.run([sys.executable, "-m", "vibes_eval", "trend", str(tmp_path / "run" / "checkpoint-40")],
                           capture_output=True, text=True, timeout=60)
    assert empty.returncode == 2 and "no scorecards" in empty.stderr


def test_scorecard_html_shows_the_baseline_table():
    from vibes_eval.report.html import render_html

    html = render_html(apply_baseline(card(gain=0.03, template="<i>evil</i>"), card(gain=2.41), "base"))
    assert 'id="baseline"' in html and "<td class=\"key\">image_gain</td>" in html
    assert "2.410" in html and "0.030" in html and "-2.38 (-99%)" in html and "falls by 30% or more" in html
    assert "&lt;i&gt;evil&lt;/i&gt;" in html and "<i>evil" not in html
    assert 'id="baseline"' not in render_html(card())


# ---------------------------------------------------------------- watch (a stand-in evaluator; the toy runs in test_guard_toy.py)


def _fake_checkpoint(root: Path, step: int, marker: bool = True) -> Path:
    d = root / f"checkpoint-{step}"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"weights")
    if marker:
        (d / "trainer_state.json").write_text("{}")
    return d


def _evaluator(calls: list):
    def evaluate(ckpt: Path, out: Path) -> int:
        calls.append(ckpt.name)
        bad = ckpt.name == "checkpoint-20"
        v = Verdict(status=FAIL, diagnoses=["image_blind"], summary=["blind"], exit_code=1) if bad else None
        save(card(gain=0.1 if bad else 2.4, verdict=v), out)
        return 1 if bad else 0
    return evaluate


def test_complete_folders(tmp_path):
    from vibes_eval.cli.watch import complete

    hf = _fake_checkpoint(tmp_path, 1)
    stage1 = tmp_path / "checkpoint-2"
    stage1.mkdir()
    (stage1 / "config.json").write_text("{}")
    assert complete(hf, settle=60) and not complete(stage1, settle=0)  # no weights yet
    (stage1 / "mm_projector.bin").write_bytes(b"x")
    mtime = (stage1 / "mm_projector.bin").stat().st_mtime
    assert not complete(stage1, settle=10, now=mtime + 5) and complete(stage1, settle=10, now=mtime + 11)


def test_watcher_every_new_in_order_and_resumes(tmp_path):
    from vibes_eval.cli.watch import Watcher

    root = tmp_path / "run"
    for step in (30, 10, 20):
        _fake_checkpoint(root, step)
    _fake_checkpoint(root, 40, marker=False)  # still being written (settle 60 s)
    (root / "tmp-checkpoint-50").mkdir()
    calls, lines = [], []
    w = Watcher(root, _evaluator(calls), every_new=True, settle=60, log=lines.append)
    assert w.run(until_idle=0, poll=0.01) == 1
    assert calls == ["checkpoint-10", "checkpoint-20", "checkpoint-30"]
    assert "step 20 (checkpoint-20): FAIL image_blind" in lines[1]
    data = json.loads((root / "vibes" / "trend.json").read_text())
    assert [e["step"] for e in data["entries"]] == [10, 20, 30] and data["worst_exit_code"] == 1
    again = Watcher(root, _evaluator(calls), every_new=True, settle=60, log=lines.append)  # a restarted watcher
    assert again.run(until_idle=0, poll=0.01) == 1 and calls == ["checkpoint-10", "checkpoint-20", "checkpoint-30"]


def test_watcher_default_judges_the_newest_waiting(tmp_path):
    from vibes_eval.cli.watch import Watcher

    root = tmp_path / "run"
    for step in (10, 20, 30):
        _fake_checkpoint(root, step)
    calls = []
    w = Watcher(root, _evaluator(calls), settle=60, log=lambda line: None)
    assert w.run(until_idle=0, poll=0.01) == 0 and calls == ["checkpoint-30"]
    _fake_checkpoint(root, 25)  # older than the last judged: passed over
    _fake_checkpoint(root, 40)
    assert w.run(until_idle=0, poll=0.01) == 0 and calls == ["checkpoint-30", "checkpoint-40"]


def test_watch_usage_errors(tmp_path, capsys):
    from vibes_eval.cli.main import main

    (tmp_path / "file").write_text("x")
    assert main(["watch", str(tmp_path / "file"), "--until-idle", "0"]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["watch", str(tmp_path), "--until-idle", "-1"]) == 2


def test_trend_ignores_malformed_old_entries(tmp_path):
    root = _run_dir(tmp_path)
    (root / "vibes").mkdir(exist_ok=True)
    bad = [{"step": 5, "status": "pass"}, {"step": "7"}, "x", {"step": 9, "status": "<b>", "exit_code": 0}]
    (root / "vibes" / "trend.json").write_text(json.dumps({"entries": bad}))
    assert [e["step"] for e in collect_entries(root)] == [10, 20, 30]
    (root / "vibes" / "trend.json").write_text("not json")
    assert [e["step"] for e in collect_entries(root)] == [10, 20, 30]


def test_summaries_never_carry_a_secret(tmp_path, monkeypatch, capsys):
    from vibes_eval.safety import register_secret

    register_secret("sk-test-9f8e7d6c5b4a")
    bad = card(answer="my key is sk-test-9f8e7d6c5b4a",
               verdict=Verdict(status=FAIL, diagnoses=["gibberish"], summary=["http://u:pw@host/ said sk-test-9f8e7d6c5b4a"], exit_code=1))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "s.md"))
    emit_summaries(bad)
    out = capsys.readouterr().out + (tmp_path / "s.md").read_text()
    assert "sk-test-9f8e7d6c5b4a" not in out and "pw@" not in out and "***" in out


def test_watcher_survives_an_evaluator_crash(tmp_path):
    from vibes_eval.cli.watch import Watcher

    root = tmp_path / "run"
    for step in (10, 20):
        _fake_checkpoint(root, step)
    calls, lines = [], []
    ok = _evaluator(calls)

    def evaluate(ckpt, out):
        if ckpt.name == "checkpoint-10":
            raise OSError("disk full\nsecond line")
        return ok(ckpt, out)

    w = Watcher(root, evaluate, every_new=True, settle=60, log=lines.append)
    assert w.run(until_idle=0, poll=0.01) == 3  # the crash counts as "could not be evaluated"
    assert "step 10 (checkpoint-10): could not be evaluated: OSError: disk full" in lines[0] and calls == ["checkpoint-20"]
    assert w.done == {10, 20}  # not retried forever
