"""Renderers of a Scorecard: terminal (Rich), HTML (jinja2), JUnit XML, thumbnails, and the HTML in a real browser."""

from __future__ import annotations

import base64
import io
import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from browser import headless_page
from helpers import prompt_result
from PIL import Image

from vibes_eval.records import Scorecard, Signal, Status, Verdict
from vibes_eval.report.html import render_html, write_html
from vibes_eval.report.junit import write_junit
from vibes_eval.report.terminal import render_scorecard, truncate
from vibes_eval.report.thumbs import make_thumbnail

PASS, WARN, FAIL, ERROR, SKIP = Status.PASS, Status.WARN, Status.FAIL, Status.ERROR, Status.SKIP
XSS = "<script>alert(1)</script>"


@pytest.fixture
def images(tmp_path: Path) -> dict[str, Path]:
    """A tiny toy-sized image, a large photo-sized one, a corrupt file and a path that does not exist."""
    d = tmp_path / "images"
    d.mkdir()
    tiny = Image.new("RGB", (64, 64), (255, 255, 255))
    for x in range(16, 48):
        for y in range(16, 48):
            tiny.putpixel((x, y), (220, 30, 30))
    tiny.save(d / "red_square.png")
    big = Image.new("RGB", (600, 400), (40, 90, 160))
    big.paste((250, 210, 40), (200, 100, 400, 300))
    big.save(d / "big.jpg")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return {"tiny": d / "red_square.png", "big": d / "big.jpg", "corrupt": d / "corrupt.png", "missing": d / "gone.png"}


@pytest.fixture
def scorecard(images) -> Scorecard:
    """A failing run built by hand from literal data, one prompt per status."""
    prompts = [
        prompt_result(
            "color-red", category="vqa", image=images["tiny"], answer="Red.", status=PASS,
            signals=[Signal(probe="text", status=PASS, score=1.0, reason="Answer reads as words."),
                     Signal(probe="expect", status=PASS, score=1.0, reason="Contains 'red'.")],
            variants={"blank": "White.", "swap": "Blue."}, reference="red", question="What color is the square?",
        ),
        prompt_result(
            "caption-big", category="captioning", image=images["big"], answer="A yellow square on a blue background.", status=WARN,
            signals=[Signal(probe="text", status=WARN, score=0.6, reason="Answer is 3x longer than the reference.")],
            question="Describe the image.",
        ),
        prompt_result(
            "xss", category="reasoning", image=images["corrupt"], status=FAIL,
            answer="[bold]not markup[/bold] " + XSS + " see http://evil.example/x.png",
            signals=[Signal(probe="text", status=FAIL, score=0.0, reason=f"Template leak: the answer contains {XSS}.")],
            question=f"Is {XSS} safe?", variants={"blank": XSS, "swap": ""},
        ),
        prompt_result(
            "count-missing", category="vqa", image=images["missing"], answer=None, status=ERROR,
            signals=[Signal(probe="text", status=ERROR, reason="Generation crashed; see the error.")],
            error="RuntimeError: Image features and image tokens do not match: tokens 575, features 576",
            question="What color is the square?",
        ),
        prompt_result(
            "refuse-weapon", category="refusal", image=images["tiny"], answer="", status=SKIP,
            signals=[Signal(probe="expect", status=SKIP, reason="No refusal expectation in this suite version.")],
            question="How do I build a weapon?",
        ),
    ]
    return Scorecard(
        checkpoint="/ckpts/toy-projector-zeroed",
        suite={"name": "standard", "path": "suites/standard.yaml", "sha256": "ab" * 32},
        fingerprint={
            "architecture": ["LlavaForConditionalGeneration"],
            "loader": "hf",
            "template": "llava-1.5-hf",
            "dtype": "float32",
            "device": "cpu",
            "visual_tokens": 16,
            "projector": {"linear_1": {"norm": 0.0, "shape": [128, 96]}, "linear_2": {"norm": 0.0}},
            "versions": {"transformers": "5.0.0", "torch": "2.13.0"},
            "note": XSS,
        },
        prompts=prompts,
        signals=[
            Signal(probe="loader.projector", status=FAIL, score=0.0, reason="Projector weights are all zero (norm 0.00).",
                   evidence={"norm": 0.0}),
            Signal(probe="grounding", status=FAIL, score=0.03, reason="Same answer with a blank image on 9/10 prompts (similarity 0.97)."),
            Signal(probe="loader.tokens", status=PASS, score=1.0, reason="16 image tokens match 16 features."),
        ],
        verdict=Verdict(
            status=FAIL,
            diagnoses=["projector_disconnected", "image_blind"],
            summary=["The projector outputs zeros: the language model never sees the image.",
                     "Answers with a blank image match the real ones on 9/10 prompts."],
            exit_code=1,
        ),
        created="2025-01-02T03:04:05Z",
        seconds=12.34,
    )


# ---------------------------------------------------------------- terminal

def _terminal(scorecard: Scorecard) -> str:
    from rich.console import Console

    console = Console(width=100, file=io.StringIO(), color_system=None)
    render_scorecard(scorecard, console)
    return console.file.getvalue()


def test_terminal_shows_verdict_first_then_prompts_signals_fingerprint(scorecard):
    out = _terminal(scorecard)
    assert out.index("VERDICT: FAIL") < out.index("color-red") < out.index("grounding") < out.index("fingerprint")
    for needle in ["projector_disconnected, image_blind", "The projector outputs zeros",
                   "5 prompts: 1 pass, 1 warn, 1 fail, 1 error, 1 skip", "exit code 1"]:
        assert needle in out
    for p in scorecard.prompts:
        assert p.id in out
    assert "Answer is 3x longer" in out  # a warn reason
    assert "Answer reads as words." not in out  # pass reasons stay out of the table
    assert "RuntimeError: Image" in out  # the crash
    assert "No refusal expectation" in out  # why a skipped prompt was skipped
    assert "Same answer with a blank image on 9/10" in out
    fingerprint = " ".join(out[out.index("fingerprint"):].split())
    assert fingerprint == ("fingerprint architecture LlavaForConditionalGeneration · loader hf · template llava-1.5-hf"
                           " · dtype float32 · device cpu · visual tokens 16")
    assert all(len(line) <= 100 for line in out.splitlines())


def test_terminal_prints_model_text_literally(scorecard):
    out = _terminal(scorecard)
    assert "[bold]not" in out  # console markup in an answer is not interpreted


@pytest.mark.parametrize("text, expected", [("Red.", "Red."), ("a\n  b", "a b"), ("x" * 80, "x" * 59 + "…")])
def test_truncate(text, expected):
    assert truncate(text) == expected


# ---------------------------------------------------------------- HTML

def test_html_escapes_every_string(scorecard, tmp_path):
    html = write_html(scorecard, tmp_path / "r" / "scorecard.html").read_text()
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("&lt;script&gt;") >= 5  # answer, question, blank variant, reason, fingerprint


def test_html_has_no_url(scorecard):
    html = render_html(scorecard)
    assert "http://" not in html and "https://" not in html
    assert "http:&#47;&#47;evil.example" in html  # the model's link is still readable
    assert "xmlns" not in html and "url(" not in html


def test_html_reads_at_a_glance(scorecard):
    html = render_html(scorecard)
    order = ["FAIL", "projector_disconnected", "The projector outputs zeros", "color-red",
             "Checkpoint signals", "Fingerprint"]
    positions = [html.index(s, html.index("<body>")) for s in order]
    assert positions == sorted(positions)
    for p in scorecard.prompts:
        assert f'<span class="pid">{p.id}</span>' in html
    assert "White." in html and "Blue." in html  # blank / swap answers
    assert "&#34;linear_1&#34;" in html or "&quot;linear_1&quot;" in html  # nested fingerprint as JSON
    assert "2025-01-02T03:04:05Z" in html


def test_html_embeds_thumbnails_and_placeholders(scorecard):
    html = render_html(scorecard)
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(uris) == 3  # tiny (twice) and big; corrupt and missing are placeholders
    sizes = {Image.open(io.BytesIO(base64.b64decode(u))).size for u in uris}
    assert sizes == {(128, 128), (160, 107)}
    assert "image not found: gone.png" in html
    assert "image unreadable: corrupt.png" in html


# ---------------------------------------------------------------- thumbnails

@pytest.mark.parametrize("size, expected", [((64, 64), (128, 128)), ((600, 400), (160, 107)),
                                            ((100, 50), (100, 50)), ((20, 10), (120, 60)), ((160, 160), (160, 160))])
def test_thumbnail_sizes(tmp_path, size, expected):
    path = tmp_path / "im.png"
    Image.new("L", size, 128).save(path)
    thumb = make_thumbnail(path)
    assert thumb.uri.startswith("data:image/png;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(thumb.uri.split(",", 1)[1]))).size == expected
    assert thumb.note == f"{size[0]}x{size[1]}"


@pytest.mark.parametrize("name, note", [(None, "no image"), ("", "no image"), ("gone.png", "image not found: gone.png"),
                                        ("corrupt.png", "image unreadable: corrupt.png"), ("adir", "image not found: adir")])
def test_thumbnail_placeholder(tmp_path, name, note):
    (tmp_path / "corrupt.png").write_bytes(b"GIF89a garbage")
    (tmp_path / "adir").mkdir()
    thumb = make_thumbnail(None if name is None else ("" if name == "" else tmp_path / name))
    assert thumb.uri is None
    assert thumb.note.startswith(note)


# ---------------------------------------------------------------- JUnit

def test_junit_parses_and_counts(scorecard, tmp_path):
    path = write_junit(scorecard, tmp_path / "junit.xml")
    root = ET.parse(path).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "vibes-eval: standard"
    cases = suite.findall("testcase")
    assert len(cases) == 5 + 3
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "8", "failures": "3", "errors": "1", "skipped": "1"}
    assert root.get("tests") == "8"
    by_name = {c.get("name"): c for c in cases}
    assert by_name["color-red"].get("classname") == "prompts.vqa"
    assert list(by_name["color-red"].iter("failure")) == []
    assert "Template leak" in by_name["xss"].find("failure").get("message")
    assert "575" in by_name["count-missing"].find("error").get("message")
    assert by_name["refuse-weapon"].find("skipped") is not None
    warn = by_name["caption-big"]
    assert warn.find("failure") is None and warn.find("error") is None
    assert "WARN: text: Answer is 3x longer" in warn.find("system-out").text
    checkpoint = [c for c in cases if c.get("classname") == "checkpoint"]
    assert [c.get("name") for c in checkpoint] == ["loader.projector", "grounding", "loader.tokens"]
    assert checkpoint[0].find("failure").get("message") == "Projector weights are all zero (norm 0.00)."


def test_junit_survives_control_characters(scorecard, tmp_path):
    broken = scorecard.prompts[0].model_copy(update={"answer": "\x00\x1b[2J!!!!\x07", "status": FAIL})
    sc = scorecard.model_copy(update={"prompts": [broken]})
    root = ET.parse(write_junit(sc, tmp_path / "junit.xml")).getroot()
    assert "!!!!" in root.find("testsuite/testcase/failure").text


# ---------------------------------------------------------------- the HTML in a browser

def test_html_in_headless_chromium(scorecard, tmp_path):
    page_path = write_html(scorecard, tmp_path / "scorecard.html")
    with headless_page(page_path) as opened:
        page = opened.page
        assert page.locator("article.card").count() == len(scorecard.prompts)
        assert page.locator("img").count() == 3
        # every thumbnail decoded (naturalWidth is 0 for a broken image)
        assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
        assert page.locator(".verdict").inner_text() == "FAIL"
        shot = tmp_path / "scorecard.png"
        page.screenshot(path=str(shot), full_page=True)
    if os.environ.get("VIBES_SCREENSHOT_DIR"):  # to look at it by hand
        shutil.copy(shot, Path(os.environ["VIBES_SCREENSHOT_DIR"]) / shot.name)
    assert opened.errors == []
    assert [u for u in opened.requests if u != opened.url and not u.startswith("data:")] == []
    assert opened.url in opened.requests
    assert shot.is_file() and shot.stat().st_size > 0


def test_a_run_that_could_not_load_renders_everywhere(tmp_path):
    sc = Scorecard(
        checkpoint="/ckpts/missing", suite={"name": "standard"}, fingerprint={}, prompts=[],
        signals=[Signal(probe="loader", status=ERROR, reason="config.json not found in /ckpts/missing.")],
        verdict=Verdict(status=ERROR, summary=["The checkpoint could not be loaded."], exit_code=3),
        created="2025-01-02T03:04:05Z",
    )
    out = _terminal(sc)
    assert "VERDICT: ERROR" in out and "config.json not found" in out and "(none recorded)" in out
    html = render_html(sc)
    assert "This run has no prompt results." in html and "No fingerprint recorded." in html
    suite = ET.parse(write_junit(sc, tmp_path / "junit.xml")).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("errors")) == ("1", "1")
