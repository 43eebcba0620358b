"""Issue 13, the reports under attack: atomic and consistent files, no secret, no terminal or bidi tricks.

A full disk is injected at the one seam every report write goes through (atomic._os_write),
so no test needs a real small filesystem.
"""

from __future__ import annotations

import errno
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from bounded import finish, joined, output_until
from PIL import Image

from vibes_eval.records import PromptResult, Scorecard, Signal, Status, Verdict
from vibes_eval.report import atomic
from vibes_eval.report.compare import load_reports
from vibes_eval.report.compare_html import write_compare_html
from vibes_eval.report.files import write_reports
from vibes_eval.safety import bidi_isolate, redact, register_secret, strip_control

SECRET = "sk-live-HARDENING-7f3a9c"
RLO, PDI = "\u202e", "\u2069"


def card(tmp_path: Path, *, checkpoint="/ckpts/toy", suite_name="shapes", answer="A red circle.", image=None,
         error=None, fingerprint=None, suite_path=None) -> Scorecard:
    if image is None:
        image = tmp_path / "img.png"
        Image.new("RGB", (8, 8), (200, 10, 10)).save(image)
    p = PromptResult(id="p1", category="vqa", question="What is it?", image="img.png", image_path=str(image),
                     answer=answer, status=Status.PASS, error=error,
                     signals=[Signal(probe="text", status=Status.PASS, score=1.0, reason="Reads as words.")])
    return Scorecard(checkpoint=checkpoint, suite={"name": suite_name, "path": suite_path, "sha256": None},
                     fingerprint=fingerprint or {"loader": "hf"}, prompts=[p],
                     verdict=Verdict(status=Status.PASS, summary=["All good."]), created="2026-12-01T00:00:00+00:00")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


# --- durable files --------------------------------------------------------------------------------------


def test_a_full_disk_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "scorecard.html"
    target.write_text("the good old report")
    calls = []

    def full(fd, data):  # the first block goes through, then the disk is full
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return atomic.os.write(fd, bytes(data[:10]))

    monkeypatch.setattr(atomic, "_os_write", full)
    with pytest.raises(OSError) as e:
        atomic.write_atomic(target, "x" * 100_000)
    assert e.value.errno == errno.ENOSPC
    assert target.read_text() == "the good old report" and leftovers(tmp_path) == []


def test_a_full_disk_during_write_reports_keeps_the_previous_run_whole(tmp_path, monkeypatch):
    first = write_reports(card(tmp_path, answer="first run"), tmp_path / "out", tmp_path / "junit.xml")
    before = {p: p.read_bytes() for p in first}
    written = []

    def full_after_one_file(fd, data):
        if len(written) >= 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(fd)
        return atomic.os.write(fd, data)

    monkeypatch.setattr(atomic, "_os_write", full_after_one_file)
    with pytest.raises(OSError):
        write_reports(card(tmp_path, answer="second run"), tmp_path / "out", tmp_path / "junit.xml")
    # the json was replaced whole; the html and junit are the first run's, whole; no half file anywhere
    for p in first[1:]:
        assert p.read_bytes() == before[p]
    assert json.loads(first[0].read_text())["prompts"][0]["answer"] == "second run"
    assert leftovers(tmp_path / "out") == [] and leftovers(tmp_path) == []


def test_one_run_id_in_every_file_of_a_run(tmp_path):
    paths = write_reports(card(tmp_path), tmp_path / "out", tmp_path / "junit.xml")
    run_id = json.loads(paths[0].read_text())["run_id"]
    assert re.fullmatch(r"[0-9a-f]{12}", run_id)
    assert f'<meta name="vibes-eval-run-id" content="{run_id}">' in paths[1].read_text()
    props = {p.get("name"): p.get("value") for p in ET.parse(paths[2]).getroot().iter("property")}
    assert props["run_id"] == run_id
    again = write_reports(card(tmp_path), tmp_path / "out2", run_id="feedfacecafe")
    assert json.loads(again[0].read_text())["run_id"] == "feedfacecafe"


def test_check_writable_names_the_flag(tmp_path):
    (tmp_path / "file").write_text("x")
    assert atomic.check_writable_dir(tmp_path / "file") == f"--out: {tmp_path / 'file'} exists and is not a folder"
    assert atomic.check_writable_file(tmp_path, "--junit") == f"--junit: {tmp_path} is a folder, not a file"
    assert "cannot write there" in atomic.check_writable_dir(tmp_path / "file" / "sub")
    assert atomic.check_writable_dir(tmp_path / "new" / "deep") is None and (tmp_path / "new" / "deep").is_dir()


# --- secrets --------------------------------------------------------------------------------------------


def test_a_registered_secret_is_in_no_report(tmp_path):
    register_secret(SECRET)
    sc = card(tmp_path, answer=f"the key is {SECRET}", error=f"HTTP 401: Incorrect API key provided: Bearer {SECRET}",
              checkpoint="m at http://bob:hunter2pw@127.0.0.1:9/v1", fingerprint={"server": {"echo": SECRET}})
    paths = write_reports(sc, tmp_path / "out", tmp_path / "junit.xml")
    for p in paths:
        text = p.read_text()
        assert SECRET not in text and "hunter2pw" not in text, p.name
    assert "the key is ***" in paths[0].read_text()


def test_redact_covers_encodings_and_headers():
    register_secret("pa55-w0rd/+x")
    assert redact("u=pa55-w0rd%2F%2Bx") == "u=***"
    assert redact("Authorization: Bearer abcdef123456") == "Authorization: ***"
    assert redact("curl http://u:p@host/x") == "curl http://***@host/x"
    assert redact("the image token count") == "the image token count"


# --- terminal, XML and bidi hygiene ---------------------------------------------------------------------


EVIL = "\x1b]0;pwned\x07\x1b[2J\x1b[1;32mALL PASS\x1b[0m\x9b31m\x00done"


def test_terminal_output_carries_no_escape_from_an_answer(tmp_path):
    from rich.console import Console

    from vibes_eval.report.terminal import render_scorecard

    for force in (False, True):
        buf = io.StringIO()
        render_scorecard(card(tmp_path, answer=EVIL, checkpoint="ck\x1b[2Jpt", suite_name="s\x1b]0;x\x07"),
                         Console(file=buf, force_terminal=force, width=160))
        out = buf.getvalue()
        assert "\x1b]" not in out and "\x1b[2J" not in out and "\x07" not in out and "\x00" not in out and "\x9b" not in out
        assert not re.search(r"\x1b\[(?![0-9;]*m)", out)  # only Rich's own colours remain on a terminal
        assert "ALL PASSdone" in out and "ckpt" in out


def test_strip_control_removes_whole_sequences():
    assert strip_control(EVIL) == "ALL PASSdone"
    assert strip_control("a\nb\tc\rd", newlines=False) == "a b c d"
    assert strip_control(f"x{RLO}y") == "xy"


def test_junit_attributes_are_valid_xml_whatever_the_names(tmp_path):
    sc = card(tmp_path, suite_name="suite\x00with\x1b[31mNUL", checkpoint="/c\x00k\x1b]0;t\x07pt")
    paths = write_reports(sc, tmp_path / "out", tmp_path / "junit.xml")
    root = ET.parse(paths[2]).getroot()  # parses: no NUL or ESC anywhere
    raw = paths[2].read_bytes()
    assert b"\x00" not in raw and b"\x1b" not in raw
    assert root.get("name").startswith("vibes-eval: suite") and root.find("testsuite").get("name") == root.get("name")


def test_bidi_override_in_a_name_is_isolated_in_html(tmp_path):
    sc = card(tmp_path, checkpoint=f"/ckpts/evil{RLO}gpj.exe", suite_name=f"s{RLO}uite", answer=f"ans{RLO}wer")
    html = write_reports(sc, tmp_path / "out")[1].read_text()
    assert f"<bdi>\u2068/ckpts/evil{RLO}gpj.exe{PDI}</bdi>" in html
    assert f"<bdi>\u2068s{RLO}uite{PDI}</bdi>" in html
    for m in re.finditer(RLO, html):  # every override is closed before the next tag
        rest = html[m.end():]
        assert rest.index(PDI) < rest.index("<")


def test_bidi_isolate_drops_a_pdi_that_would_escape():
    assert bidi_isolate(f"a{PDI}{RLO}b") == f"\u2068a{RLO}b{PDI}"
    assert bidi_isolate("plain") == "plain"


# --- compare embeds only what it may --------------------------------------------------------------------


def test_compare_embeds_only_images_in_the_report_or_suite_folder(tmp_path):
    private = tmp_path / "private"
    private.mkdir()
    secret_img = private / "holiday.png"
    Image.new("RGB", (8, 8), (1, 2, 3)).save(secret_img)
    reports = tmp_path / "reports"
    own = reports / "a" / "img.png"
    own.parent.mkdir(parents=True)
    Image.new("RGB", (8, 8), (9, 9, 9)).save(own)
    crafted = card(tmp_path, image=secret_img, suite_path=str(private / "suite.yaml"))
    (reports / "a" / "scorecard.json").write_text(card(tmp_path, image=own).model_dump_json())
    (reports / "b").mkdir()
    (reports / "b" / "scorecard.json").write_text(crafted.model_copy(update={"prompts": [
        crafted.prompts[0].model_copy(update={"id": "p2"})]}).model_dump_json())
    sources = [reports / "a", reports / "b"]
    html = write_compare_html(load_reports(sources), tmp_path / "compare.html", sources=sources).read_text()
    assert html.count("data:image/png;base64,") == 1  # own image only
    assert "holiday.png is outside the report" in html


def test_a_suite_folder_is_trusted_only_with_its_recorded_hash(tmp_path):
    import hashlib

    from vibes_eval.report.thumbs import allowed_roots

    suite = tmp_path / "s" / "suite.yaml"
    suite.parent.mkdir()
    suite.write_text("name: x\n")
    sc = card(tmp_path, suite_path=str(suite))
    assert allowed_roots(sc) == []  # no hash recorded
    good = sc.model_copy(update={"suite": {**sc.suite, "sha256": hashlib.sha256(suite.read_bytes()).hexdigest()}})
    assert allowed_roots(good) == [suite.parent.resolve()]


def test_same_named_checkpoints_get_their_own_report_folders():
    from vibes_eval.cli.run import _report_names

    assert _report_names([Path("/a/ckpt"), Path("/b/ckpt"), Path("/c/CKPT"), Path("/d/other")]) == ["ckpt", "ckpt-2", "CKPT-3", "other"]


def test_two_runs_sharing_out_leave_one_runs_files_not_a_mix(tmp_path):
    import threading

    out = tmp_path / "out"
    errors = []

    def writer(run_id: str) -> None:
        try:
            for _ in range(15):
                write_reports(card(tmp_path, answer=run_id), out, out / "junit.xml", run_id=run_id)
        except Exception as e:  # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(rid,)) for rid in ("aaaaaaaaaaaa", "bbbbbbbbbbbb")]
    for t in threads:
        t.start()
    for t in threads:
        joined(t, 60, "a report writer")
    run_id = json.loads((out / "scorecard.json").read_text())["run_id"]
    assert not errors and run_id in (out / "scorecard.html").read_text() and run_id in (out / "junit.xml").read_text()
    assert leftovers(out) == []


def test_sigterm_during_a_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    import signal
    import subprocess
    import sys

    report = tmp_path / "r1"
    report.mkdir()
    (report / "scorecard.json").write_text(card(tmp_path).model_dump_json())
    html = tmp_path / "compare.html"
    html.write_text("the old page")
    script = (
        "import sys, time\n"
        "from vibes_eval.cli import main as cli\n"
        "from vibes_eval.report import atomic\n"
        "def slow(fd, data):\n"
        "    print('writing', flush=True); time.sleep(0.05); return atomic.os.write(fd, bytes(data[:64]))\n"
        "atomic._os_write = slow\n"
        f"sys.argv = ['vibes-eval', 'compare', {str(report)!r}, '--html', {str(html)!r}]\n"
        "cli.console_main()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    output_until(proc, "writing", 60, "vibes-eval compare writing its page")  # the first block of the new page is being written
    proc.send_signal(signal.SIGTERM)
    _, err = finish(proc, 30, "vibes-eval compare after SIGTERM")
    assert proc.returncode == 143 and "vibes-eval: terminated" in err and "Traceback" not in err
    assert html.read_text() == "the old page" and leftovers(tmp_path) == []


def test_compare_refuses_an_oversized_scorecard_in_one_line(tmp_path, capsys):
    import argparse

    from vibes_eval.cli.compare import compare_command
    from vibes_eval.report.compare import MAX_SCORECARD_BYTES

    big = tmp_path / "r" / "scorecard.json"
    big.parent.mkdir()
    with open(big, "wb") as f:
        f.truncate(MAX_SCORECARD_BYTES + 1)  # sparse: no real disk used
    code = compare_command(argparse.Namespace(reports=[big.parent], html=None, only_diff=False))
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "is not a scorecard" in err
