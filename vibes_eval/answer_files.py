"""Read answers someone else generated: JSONL/JSON, lmms-eval `--log_samples`, VLMEvalKit predictions.

`read_answers(path, answer_field=None, question_field=None)` -> (answers, skipped). Bad input
raises `errors.AnswerFileError` (a UsageError: exit 2) naming the file, the line or row, the field.
FORMATS.md in tests/fixtures/eval_logs says how lmms-eval and VLMEvalKit write their files.
"""

from __future__ import annotations

import csv
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from vibes_eval.errors import AnswerFileError

__all__ = ["ANSWER_FIELDS", "MAX_FILE_BYTES", "QUESTION_FIELDS", "Answer", "read_answers"]

ANSWER_FIELDS = ("prediction", "response", "answer", "output", "text", "pred", "filtered_resps", "resps")
"""Tried in order when --answer-field is not given (the first holding text wins). `prediction` comes before
`answer` because VLMEvalKit tables keep the reference in `answer` and the model's in `prediction`."""
QUESTION_FIELDS = ("question", "prompt", "input", "query", "instruction")
"""Tried in order when --question-field is not given; none present: judged without a question."""
MAX_FILE_BYTES = 512 * 1024 * 1024
MAX_FOLDER_FILES = 1000
"""A folder given on the command line: at most this many of its files are read."""


@dataclass(frozen=True)
class Answer:
    """One answer to judge, with where it came from."""

    file: str
    position: str
    """"line 3" (JSONL), "row 4" (TSV/xlsx), "item 2" (JSON list)."""
    answer: str
    question: str | None
    model: str | None = None


def _lookup(record: dict, dotted: str):
    """`a.b.0` into nested dicts and lists; KeyError when a step is missing."""
    value = record
    for step in dotted.split("."):
        if isinstance(value, list) and step.isdigit() and int(step) < len(value):
            value = value[int(step)]
        elif isinstance(value, dict) and step in value:
            value = value[step]
        else:
            raise KeyError(dotted)
    return value


def _first_text(value):
    """A string, or the first string inside nested lists (lmms-eval's `[["text"]]`); None when there is none."""
    while isinstance(value, list) and value:
        value = value[0]
    return value if isinstance(value, str) else None


def _pick(record: dict, explicit: str | None, defaults: tuple[str, ...], where: str, what: str, required: bool):
    if explicit:
        try:
            value = _lookup(record, explicit)
        except KeyError:
            raise AnswerFileError(f"{where}: no field '{explicit}' (--{what}-field)") from None
        text = _first_text(value)
        if text is None and value is not None and required:
            raise AnswerFileError(f"{where}: field '{explicit}' is {type(value).__name__}, not text")
        return text
    for name in defaults:
        if name in record:
            text = _first_text(record[name])
            if text is not None:
                return text
    if required:
        raise AnswerFileError(
            f"{where}: no answer field (tried {', '.join(defaults)}); name it with --answer-field"
        )
    return None


def _records_jsonl(path: Path) -> Iterator[tuple[str, dict]]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise AnswerFileError(f"{path}: line {n}: not JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise AnswerFileError(f"{path}: line {n}: a JSON {type(record).__name__}, not an object")
            yield f"line {n}", record


def _records_json(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise AnswerFileError(f"{path}: line {e.lineno}: not JSON ({e.msg})") from None
    if isinstance(data, dict) and isinstance(data.get("logs"), list):
        data = data["logs"]  # lmms-eval up to v0.2.3: {task}.json with "logs"
    if not isinstance(data, list):
        raise AnswerFileError(f"{path}: expected a list of records (or lmms-eval's {{\"logs\": [...]}})")
    for n, record in enumerate(data):
        if not isinstance(record, dict):
            raise AnswerFileError(f"{path}: item {n}: a JSON {type(record).__name__}, not an object")
        yield f"item {n}", record


def _records_table(path: Path, delimiter: str) -> Iterator[tuple[str, dict]]:
    csv.field_size_limit(64 * 1024 * 1024)
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        try:
            for n, row in enumerate(reader, 2):  # row 1 is the header
                yield f"row {n}", {k: v for k, v in row.items() if k is not None}
        except csv.Error as e:
            raise AnswerFileError(f"{path}: row {reader.line_num}: {e}") from None


def _records_xlsx(path: Path) -> Iterator[tuple[str, dict]]:
    try:
        from openpyxl import load_workbook
    except ImportError:
        raise AnswerFileError(
            f"{path}: reading .xlsx needs openpyxl (pip install openpyxl), or write VLMEvalKit's "
            "predictions as TSV with PRED_FORMAT=tsv"
        ) from None
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, ValueError, OSError) as e:
        raise AnswerFileError(f"{path}: not a readable .xlsx ({type(e).__name__}: {e})") from None
    try:
        rows = book.worksheets[0].iter_rows(values_only=True)
        header = [str(h) if h is not None else "" for h in next(rows, [])]
        for n, row in enumerate(rows, 2):
            yield f"row {n}", {h: ("" if v is None else str(v)) for h, v in zip(header, row) if h}
    finally:
        book.close()


_READERS = {
    ".jsonl": _records_jsonl,
    ".json": _records_json,
    ".tsv": lambda p: _records_table(p, "\t"),
    ".csv": lambda p: _records_table(p, ","),
    ".xlsx": _records_xlsx,
}


def _is_lmms_eval(record: dict) -> bool:
    return "doc_id" in record and ("filtered_resps" in record or "resps" in record)


def _lmms_answer(record: dict) -> str | None:
    """lmms-eval's answer: `filtered_resps` (v0.7+: a string; before: ["text"]), else `resps`.

    A doc with several requests (multiple choice) or a log-likelihood pair (["-1.2", "False"]) has
    no free text: None.
    """
    value = record["filtered_resps"] if "filtered_resps" in record else record.get("resps")
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) else None


def _lmms_question(record: dict) -> str | None:
    if isinstance(record.get("input"), str):
        return record["input"]
    doc = record.get("doc")
    return doc.get("question") if isinstance(doc, dict) and isinstance(doc.get("question"), str) else None


def expand_paths(paths) -> list[Path]:
    """Files as given, and for a folder the answer files in it (not recursive): its lmms-eval
    `*_samples_*.jsonl` when it has them (lmms-eval writes its `*_results.json` beside them), else every
    file with a known suffix. AnswerFileError for a folder with none."""
    out: list[Path] = []
    for path in map(Path, paths):
        if not path.is_dir():
            out.append(path)
            continue
        found = sorted(f for f in path.iterdir() if f.is_file() and f.suffix.lower() in _READERS)[:MAX_FOLDER_FILES]
        chosen = [f for f in found if "_samples_" in f.name] or found
        if not chosen:
            raise AnswerFileError(f"{path}: a folder without answer files ({', '.join(_READERS)})")
        out += chosen
    return out


def read_answers(path: str | Path, answer_field: str | None = None, question_field: str | None = None):
    """The answers in one file, in file order, and how many records held no text answer.

    Returns:
        (answers, skipped): skipped counts lmms-eval records whose responses are not text
        (log-likelihood tasks), which have nothing for a text probe to read.

    Raises:
        AnswerFileError: missing, unreadable or malformed file, or a record without the answer field.
    """
    path = Path(path)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise AnswerFileError(f"{path}: unknown format '{path.suffix}' (expected {', '.join(_READERS)})")
    try:
        size = path.stat().st_size
    except OSError as e:
        raise AnswerFileError(f"{path}: cannot read ({e.strerror or e})") from None
    if size > MAX_FILE_BYTES:
        raise AnswerFileError(f"{path}: {size} bytes, more than the {MAX_FILE_BYTES} this command reads")
    answers, skipped = [], 0
    try:
        for position, record in reader(path):
            where = f"{path}: {position}"
            if answer_field is None and _is_lmms_eval(record):
                text = _lmms_answer(record)
                if text is None:
                    skipped += 1
                    continue
                question = _pick(record, question_field, (), where, "question", False) if question_field else _lmms_question(record)
            else:
                text = _pick(record, answer_field, ANSWER_FIELDS, where, "answer", True)
                if text is None:
                    raise AnswerFileError(f"{where}: field '{answer_field}' is empty (null)")
                question = _pick(record, question_field, QUESTION_FIELDS, where, "question", False)
            answers.append(Answer(file=str(path), position=position, answer=text, question=question))
    except UnicodeDecodeError as e:
        raise AnswerFileError(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise AnswerFileError(f"{path}: cannot read ({e.strerror or e})") from None
    return answers, skipped
