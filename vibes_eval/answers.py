"""`check_answers`: the text judgement on answers someone else generated (no model is loaded).

Reads the files with `vibes_eval.answer_files.read_answers`, runs every text probe but `runaway`
(an eval log does not say whether an answer hit its length limit) on each answer, and returns an
`AnswerCheck`: one `AnswerResult` per input answer, in order, and a summary.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from vibes_eval.answer_files import Answer, expand_paths, read_answers
from vibes_eval.errors import EXIT_GATE, EXIT_OK
from vibes_eval.judge.registry import PROBES
from vibes_eval.records import Response, Status

__all__ = ["AnswerCheck", "AnswerResult", "ProbeFinding", "check_answers", "judge_answer"]

SKIPPED_PROBES = frozenset({"runaway"})
"""Probes that need what an eval log does not keep (why generation stopped)."""
_MAX_NEW_TOKENS = 1 << 20  # unknown; no probe but runaway reads it


class ProbeFinding(BaseModel):
    """A probe that warned or failed on one answer."""

    model_config = ConfigDict(frozen=True)

    probe: str
    status: str
    reason: str


class AnswerResult(BaseModel):
    """One input answer's verdict."""

    model_config = ConfigDict(frozen=True)

    index: int
    """Position among all answers read, from 0, in file order."""
    file: str
    position: str
    """"line 3", "row 4", "item 2": where in its file."""
    status: str
    """pass | warn | fail (a probe that crashed counts as fail)."""
    probes: list[ProbeFinding] = Field(default_factory=list)
    """The probes that warned or failed (all passed: empty)."""
    answer: str


class AnswerCheck(BaseModel):
    """Every answer's verdict and the summary; `exit_code` is 1 when any answer failed."""

    answers: list[AnswerResult]
    summary: dict

    @property
    def exit_code(self) -> int:
        return EXIT_GATE if self.summary["fail"] else EXIT_OK

    def to_json(self) -> dict:
        """`{"answers": [{"index", "file", "position", "status", "probes"}], "summary": {...}}` (no answer text)."""
        return {
            "answers": [a.model_dump(exclude={"answer"}) for a in self.answers],
            "summary": self.summary,
        }


def judge_answer(answer: str, question: str | None) -> tuple[str, list[ProbeFinding]]:
    """Status and the warning/failing probes of one answer, by every text probe but runaway."""
    words = len(answer.split())
    response = Response(prompt_id="answer", text=answer, new_tokens=max(1, words) if answer.strip() else 1)
    findings = []
    for probe in PROBES.values():
        if probe.scope != "answer" or probe.name in SKIPPED_PROBES:
            continue
        for signal in probe.signals(response, question or "", _MAX_NEW_TOKENS):  # a crash: one ERROR signal
            if signal.status in (Status.WARN, Status.FAIL, Status.ERROR):
                status = "warn" if signal.status is Status.WARN else "fail"
                findings.append(ProbeFinding(probe=probe.name, status=status, reason=signal.reason))
    worst = "fail" if any(f.status == "fail" for f in findings) else "warn" if findings else "pass"
    return worst, findings


def _summary(results: list[AnswerResult], files: list[str], skipped: int) -> dict:
    statuses = Counter(r.status for r in results)
    by_probe: dict[str, dict[str, int]] = {}
    for r in results:
        for f in r.probes:
            by_probe.setdefault(f.probe, {"warn": 0, "fail": 0})[f.status] += 1
    return {
        "answers": len(results),
        "pass": statuses["pass"],
        "warn": statuses["warn"],
        "fail": statuses["fail"],
        "skipped_records": skipped,
        "by_probe": dict(sorted(by_probe.items())),
        "files": files,
    }


def check_answers(
    files: str | Path | Sequence[str | Path],
    *,
    answer_field: str | None = None,
    question_field: str | None = None,
) -> AnswerCheck:
    """Judge every answer in `files` with the text probes.

    Args:
        files: JSONL/JSON files, lmms-eval `*_samples_*.jsonl`, VLMEvalKit predictions (.xlsx/.tsv/.json).
        answer_field: The field (or dotted path, `output.text`) holding the answer; default: the
            first of `answer_files.ANSWER_FIELDS` present (lmms-eval: `filtered_resps`).
        question_field: The field holding the question; default: the first of `QUESTION_FIELDS`.

    Returns:
        The `AnswerCheck` (answers in input order; `exit_code` 1 when any failed).

    Raises:
        AnswerFileError: a file that cannot be read (exit 2), naming the file and the line.
    """
    paths = expand_paths([files] if isinstance(files, (str, Path)) else list(files))  # a folder: its answer files
    read: list[Answer] = []
    skipped = 0
    for path in paths:
        answers, n_skipped = read_answers(path, answer_field=answer_field, question_field=question_field)
        read += answers
        skipped += n_skipped
    results = []
    for i, a in enumerate(read):
        status, findings = judge_answer(a.answer, a.question)
        results.append(AnswerResult(index=i, file=a.file, position=a.position, status=status, probes=findings,
                                    answer=a.answer))
    return AnswerCheck(answers=results, summary=_summary(results, [str(p) for p in paths], skipped))
