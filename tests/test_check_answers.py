"""`vibes-eval check-answers` and `vibes_eval.check_answers`: eval logs read as their tools write them.

Fixtures (tests/fixtures/eval_logs, FORMATS.md says which writer each mirrors): six healthy
llava-v1.5-7b MM-Vet answers and, last, the llava-v1.6-34b "SelfSelf..." output of
haotian-liu/LLaVA#1284, in lmms-eval v0.7 and v0.4 `--log_samples` layouts, VLMEvalKit TSV and
JSON predictions, and a JSONL with other field names.
"""

from __future__ import annotations

import csv
import json

import pytest
from helpers import FIXTURES

from vibes_eval.answer_files import read_answers
from vibes_eval.answers import check_answers
from vibes_eval.cli.main import main
from vibes_eval.errors import AnswerFileError

LOGS = FIXTURES / "eval_logs"
LMMS_V07 = LOGS / "lmms_eval" / "llava-v1.5-7b" / "20260101_000000_samples_mmvet.jsonl"
LMMS_V04 = LOGS / "lmms_eval" / "llava-v1.5-7b" / "20250801_000000_samples_mmvet_v04.jsonl"
VLM_TSV = LOGS / "vlmevalkit" / "llava_v1.5_7b" / "llava_v1.5_7b_MMVet.tsv"
VLM_JSON = LOGS / "vlmevalkit" / "llava_v1.5_7b" / "llava_v1.5_7b_MMVet.json"
CUSTOM = LOGS / "jsonl" / "custom_fields.jsonl"


@pytest.mark.parametrize("path", [LMMS_V07, LMMS_V04, VLM_TSV, VLM_JSON])
def test_each_format_gives_the_same_answers_and_verdicts(path):
    result = check_answers(path)
    assert [a.index for a in result.answers] == list(range(7))
    assert [a.status for a in result.answers][:6] == ["pass"] * 6
    assert result.answers[6].status == "fail" and "loops" in {f.probe for f in result.answers[6].probes}
    assert result.answers[6].answer.startswith("SelfSelfSelf")
    assert result.summary["fail"] == 1 and result.summary["answers"] == 7 and result.exit_code == 1


def test_lmms_eval_question_is_the_prompt_sent():
    answers, skipped = read_answers(LMMS_V07)
    assert skipped == 0 and answers[0].question == "What is x in the equation?"
    v04, _ = read_answers(LMMS_V04)
    assert [a.answer for a in v04] == [a.answer for a in answers]  # filtered_resps ["..."], not the raw resps


def test_older_lmms_eval_layouts(tmp_path):
    rows = [{"doc_id": 0, "doc": {"question": "Describe the image."}, "target": "", "arguments": {},
             "resps": [["The image shows a red bus."]], "filtered_resps": ["The image shows a red bus."]},
            {"doc_id": 1, "doc": {}, "target": "A", "resps": [["(-1.2, False)"], ["(-0.3, True)"]],
             "filtered_resps": [["-1.2", "False"], ["-0.3", "True"]]}]
    v03 = tmp_path / "20240901_samples_task.jsonl"
    v03.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    answers, _ = read_answers(v03)
    assert answers[0].question == "Describe the image." and answers[0].answer == "The image shows a red bus."
    rows[1]["filtered_resps"] = [[-1.2, False]]  # a log-likelihood task: no text to judge
    v03.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    answers, skipped = read_answers(v03)
    assert len(answers) == 1 and skipped == 1
    v01 = tmp_path / "mmvet.json"  # lmms-eval up to v0.2.3: {task}.json with "logs"
    v01.write_text(json.dumps({"args": {}, "model_configs": {}, "logs": rows[:1], "time": "now"}))
    assert check_answers(v01).answers[0].status == "pass"


def test_vlmevalkit_prediction_wins_over_the_reference_answer_column(tmp_path):
    with open(VLM_TSV, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    rows[0]["answer"] = "the the the the the the"  # the dataset's reference, never judged
    path = tmp_path / "m_D.tsv"
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter="\t", quoting=csv.QUOTE_ALL)
        w.writeheader()
        w.writerows(rows)
    assert check_answers(path).answers[0].status == "pass"


def test_vlmevalkit_xlsx(tmp_path):
    openpyxl = pytest.importorskip("openpyxl")
    with open(VLM_TSV, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))
    book = openpyxl.Workbook()
    for row in rows:
        book.active.append(row)
    path = tmp_path / "llava_v1.5_7b_MMVet.xlsx"
    book.save(path)
    result = check_answers(path)
    assert [a.position for a in result.answers][:2] == ["row 2", "row 3"]
    assert [a.status for a in result.answers] == [a.status for a in check_answers(VLM_TSV).answers]


def test_fields_named_by_flags_including_a_dotted_path():
    answers, _ = read_answers(CUSTOM, answer_field="output.text", question_field="prompt_text")
    assert len(answers) == 7 and answers[0].question == "What is x in the equation?"
    assert check_answers(CUSTOM, answer_field="output.text").exit_code == 1


@pytest.mark.parametrize(
    "content, suffix, flags, words",
    [
        ('{"answer": "ok"}\n{"answer": \n', ".jsonl", {}, "line 2: not JSON"),
        ('{"answer": "ok"}\n[1, 2]\n', ".jsonl", {}, "line 2: a JSON list, not an object"),
        ('{"id": 1}\n', ".jsonl", {}, "line 1: no answer field"),
        ('{"output": {"text": "hi"}}\n', ".jsonl", {"answer_field": "output.txt"}, "no field 'output.txt'"),
        ('{"answer": 42}\n', ".jsonl", {"answer_field": "answer"}, "is int, not text"),
        ('{"a": 1}', ".json", {}, "expected a list of records"),
        ("x", ".md", {}, "unknown format '.md'"),
    ],
)
def test_unreadable_input_names_the_file_and_the_line(tmp_path, content, suffix, flags, words):
    path = tmp_path / f"answers{suffix}"
    path.write_text(content)
    with pytest.raises(AnswerFileError, match=words) as e:
        read_answers(path, **flags)
    assert str(path) in str(e.value)


def test_the_command_exit_codes_and_json(tmp_path, capsys):
    out = tmp_path / "check.json"
    assert main(["check-answers", str(LMMS_V07), "--json", str(out)]) == 1
    data = json.loads(out.read_text())
    assert [a["index"] for a in data["answers"]] == list(range(7))
    assert {"index", "status", "probes"} <= set(data["answers"][0])
    assert data["answers"][6]["status"] == "fail" and data["answers"][6]["probes"][0]["probe"] == "loops"
    assert data["summary"]["fail"] == 1 and data["summary"]["by_probe"]["loops"]["fail"] == 1
    assert "worst answers" in capsys.readouterr().out
    healthy = tmp_path / "healthy.jsonl"
    healthy.write_text("".join(line + "\n" for line in LMMS_V07.read_text().splitlines()[:6]))
    assert main(["check-answers", str(healthy), "--quiet"]) == 0
    assert main(["check-answers", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "missing.jsonl" in err and "Traceback" not in err
    assert main(["check-answers", str(CUSTOM)]) == 2  # no default field holds the answer


def test_the_library_function_is_public():
    import vibes_eval

    assert vibes_eval.check_answers is check_answers


def test_a_folder_means_its_answer_files_and_lmms_eval_results_are_left_out(tmp_path, capsys):
    import shutil

    folder = tmp_path / "llava-v1.5-7b"
    shutil.copytree(LOGS / "lmms_eval" / "llava-v1.5-7b", folder)
    (folder / "20260101_000000_results.json").write_text('{"results": {"mmvet": {"gpt_eval_score": 31.1}}}')
    files = sorted(f for f in folder.glob("*_samples_*.jsonl"))
    by_folder = check_answers(folder)
    by_files = check_answers(files)
    assert [(a.file, a.position, a.status) for a in by_folder.answers] == [(a.file, a.position, a.status) for a in by_files.answers]
    assert len(by_folder.answers) > 0 and by_folder.summary["files"] == [str(f) for f in files]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check-answers", str(empty)]) == 2
    assert capsys.readouterr().err.strip() == f"vibes-eval: {empty}: a folder without answer files (.jsonl, .json, .tsv, .csv, .xlsx)"
