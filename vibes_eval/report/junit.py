"""The JUnit XML view of a Scorecard, for CI dashboards: one testcase per prompt and per checkpoint signal.

Mapping of status: fail -> <failure>, error -> <error>, skip -> <skipped>; warn passes (CI should not
go red on it) but its reasons go to <system-out>, where dashboards show them next to the test.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from vibes_eval.records import PromptResult, Scorecard, Signal, Status
from vibes_eval.report.atomic import write_atomic
from vibes_eval.safety import redact, strip_control

__all__ = ["junit_bytes", "render_junit", "write_junit"]

# XML 1.0 cannot carry most control characters, even escaped; a broken model emits them
# ("\x00", "\x1b[..."), and ElementTree would write them raw into a file no parser reads back.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def write_junit(scorecard: Scorecard, path: str | Path) -> Path:
    """Write `scorecard` as JUnit XML to `path` (parent folders created).

    Args:
        scorecard: The run to report.
        path: Where the `.xml` file goes.

    Returns:
        The path written.
    """
    return write_atomic(path, junit_bytes(scorecard))  # a temporary name, then renamed: never half a file


def junit_bytes(scorecard: Scorecard) -> bytes:
    """The JUnit XML file's bytes (UTF-8, with the XML declaration)."""
    tree = ET.ElementTree(render_junit(scorecard))
    ET.indent(tree)
    buf = io.BytesIO()
    tree.write(buf, encoding="utf-8", xml_declaration=True)
    return buf.getvalue()


def render_junit(scorecard: Scorecard) -> ET.Element:
    """The `<testsuites>` element holding one `<testsuite name="vibes-eval: <suite name>">`."""
    name = f"vibes-eval: {scorecard.suite.get('name') or scorecard.suite.get('path') or '?'}"
    root = ET.Element("testsuites", name=name)
    suite = ET.SubElement(root, "testsuite", name=name, timestamp=_x(scorecard.created), time=f"{scorecard.seconds:.3f}")
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("checkpoint", scorecard.checkpoint),
        ("verdict", scorecard.verdict.status.value),
        ("diagnoses", ", ".join(scorecard.verdict.diagnoses)),
        ("exit_code", str(scorecard.verdict.exit_code)),
    ):
        ET.SubElement(props, "property", name=key, value=_x(value))

    statuses = [_prompt_case(suite, p) for p in scorecard.prompts]
    statuses += [_signal_case(suite, s) for s in scorecard.signals]
    counts = {
        "tests": len(statuses),
        "failures": statuses.count(Status.FAIL),
        "errors": statuses.count(Status.ERROR),
        "skipped": statuses.count(Status.SKIP),
    }
    for el in (root, suite):
        for key, n in counts.items():
            el.set(key, str(n))
    if scorecard.run_id:
        ET.SubElement(props, "property", name="run_id", value=scorecard.run_id)
    for el in root.iter():  # every attribute and text, whatever built it: valid XML, no terminal escapes, no secret
        for key, value in el.attrib.items():
            el.set(key, _x(value))
        if el.text:
            el.text = _x(el.text)
    return root


def _prompt_case(parent: ET.Element, p: PromptResult) -> Status:
    case = ET.SubElement(parent, "testcase", classname=_x(f"prompts.{p.category}"), name=_x(p.id), time="0")
    reasons = [f"{s.probe}: {s.reason}" for s in p.signals if s.status == p.status]
    if p.error:
        reasons.insert(0, p.error)
    detail = [f"question: {p.question}", f"answer: {p.answer!r}" if p.answer is not None else "answer: none"]
    detail += [f"{k} image answer: {v!r}" for k, v in p.variants.items()]
    if p.reference is not None:
        detail.append(f"reference: {p.reference}")
    detail += [f"[{s.status.value}] {s.probe}: {s.reason}" for s in p.signals]
    _outcome(case, p.status, reasons, "\n".join(detail))
    return p.status


def _signal_case(parent: ET.Element, s: Signal) -> Status:
    case = ET.SubElement(parent, "testcase", classname="checkpoint", name=_x(s.probe), time="0")
    detail = s.reason if s.score is None else f"{s.reason}\nscore: {s.score:.3f}"
    if s.evidence:
        detail += "\nevidence: " + ", ".join(f"{k}={v}" for k, v in s.evidence.items())
    _outcome(case, s.status, [s.reason], detail)
    return s.status


def _outcome(case: ET.Element, status: Status, reasons: list[str], detail: str) -> None:
    message = _x("; ".join(reasons) or status.value)
    if status == Status.FAIL:
        ET.SubElement(case, "failure", message=message, type="fail").text = _x(detail)
    elif status == Status.ERROR:
        ET.SubElement(case, "error", message=message, type="error").text = _x(detail)
    elif status == Status.SKIP:
        ET.SubElement(case, "skipped", message=message)
    else:
        out = f"WARN: {'; '.join(reasons)}\n{detail}" if status == Status.WARN else detail
        ET.SubElement(case, "system-out").text = _x(out)


def _x(text: str) -> str:
    """`text` as XML 1.0 can carry it: escape sequences dropped, other forbidden characters as U+FFFD, secrets redacted."""
    return _NOT_XML.sub("\ufffd", redact(strip_control(str(text))))
