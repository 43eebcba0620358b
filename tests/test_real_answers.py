"""The acceptance of issue 20 on the real-answer corpus (tests/fixtures/real_answers, PROVENANCE.md).

No healthy answer of a published model FAILs, at most 1% WARN; every broken output that can be
told from its text FAILs (not_text_detectable.json lists the others and why). The answers are
judged as `vibes-eval check-answers` judges them (`vibes_eval.answers.judge_answer`).
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest
from helpers import FIXTURES

from vibes_eval.answers import judge_answer

CORPUS = FIXTURES / "real_answers"
NOT_DETECTABLE = json.loads((CORPUS / "not_text_detectable.json").read_text())
SOURCE = re.compile(r"^[\w.-]+/[\w.-]+@[0-9a-f]{40}:\S.*$|^https://github\.com/[\w.-]+/[\w.-]+/(issues|pull)/\d+$")


def _rows(kind: str | None = None) -> list[dict]:
    rows = []
    for f in sorted(CORPUS.glob("*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            row = json.loads(line)
            row["where"] = f"{f.name}:{n}"
            if kind is None or row["kind"] == kind:
                rows.append(row)
    return rows


@pytest.fixture(scope="module")
def healthy():
    rows = _rows("healthy")
    for r in rows:
        r["status"], r["findings"] = judge_answer(r["answer"], r["question"])
    return rows


def test_every_entry_names_its_source_model_and_kind():
    rows = _rows()
    assert rows
    for r in rows:
        assert SOURCE.match(r["source"]), r["where"]
        assert r["model"] and isinstance(r["answer"], str) and r["kind"] in ("healthy", "refusal_request", "broken")
        assert r["question"] is None or isinstance(r["question"], str)
    assert (CORPUS / "PROVENANCE.md").is_file()


def test_the_corpus_is_what_the_repo_can_hold():
    """Published LLaVA-family answers of 3 models, read file by file through the code index (PROVENANCE.md).

    Issue 20 asked for 1,000+ healthy answers; the repo holds the 646 that could be taken from the index
    (answers read out of repository snapshots may not be committed here). The thresholds were also
    checked on a 2,507-answer corpus outside the repo (bench/README.md gives both figures).
    """
    healthy = _rows("healthy")
    families = Counter(r["model"] for r in healthy if "llava" in r["model"].lower())
    assert sum(families.values()) >= 600 and len(families) >= 3
    long = [r for r in healthy if 100 <= len(r["answer"].split()) <= 400]
    assert len(long) >= 200
    assert len(_rows("broken")) >= 20 and len(_rows("refusal_request")) >= 200


def test_no_healthy_real_answer_fails(healthy):
    failed = [(r["where"], [f.reason for f in r["findings"]]) for r in healthy if r["status"] == "fail"]
    assert not failed


def test_at_most_one_percent_of_healthy_real_answers_warn(healthy):
    warned = [r for r in healthy if r["status"] == "warn"]
    assert len(warned) <= 0.01 * len(healthy), [(r["where"], [f.probe for f in r["findings"]]) for r in warned]


@pytest.mark.parametrize("row", _rows("broken"), ids=lambda r: r["where"])
def test_every_text_detectable_broken_output_fails(row):
    if row["source"] in NOT_DETECTABLE:
        pytest.skip(NOT_DETECTABLE[row["source"]])
    status, findings = judge_answer(row["answer"], row["question"])
    assert status == "fail", (row["source"], [(f.probe, f.status) for f in findings])
