"""`vibes-eval check-answers FILE [FILE ...]`: the text judgement on answers another tool generated.

Screens any eval run (a JSONL/JSON of answers, lmms-eval `--log_samples` files, VLMEvalKit
prediction files) for a broken model's symptoms without loading the model. Exit 0: no answer
failed; 1: at least one failed; 2: a file could not be read (one line naming it and the line).
"""

from __future__ import annotations

from pathlib import Path

from vibes_eval.errors import EXIT_GATE, EXIT_OK, UsageError

__all__ = ["add_check_answers_parser", "check_answers_command"]

WORST_SHOWN = 8


def add_check_answers_parser(sub) -> None:
    p = sub.add_parser(
        "check-answers",
        help="judge answers another tool generated (JSONL/JSON, lmms-eval samples, VLMEvalKit predictions) "
        "with the text probes; exit 0, 1 (an answer failed) or 2",
    )
    p.add_argument("files", metavar="FILE", nargs="+", type=Path,
                   help=".jsonl, .json, .tsv, .csv or .xlsx (xlsx needs openpyxl)")
    p.add_argument("--answer-field", metavar="FIELD",
                   help="the field holding the answer, dotted for nested ones (output.text); default: the first "
                   "of prediction, response, answer, output, text, pred present (lmms-eval: filtered_resps)")
    p.add_argument("--question-field", metavar="FIELD",
                   help="the field holding the question; default: question, prompt, input, query or instruction")
    p.add_argument("--json", metavar="OUT", type=Path, help='write {"answers": [...], "summary": {...}} here')
    p.add_argument("--quiet", action="store_true", help="no table, only the exit code (and --json)")


def check_answers_command(args) -> int:
    from vibes_eval.answers import check_answers
    from vibes_eval.report.atomic import check_writable_file, write_atomic

    if args.json is not None and (problem := check_writable_file(args.json, "--json")):
        raise UsageError(problem)
    result = check_answers(args.files, answer_field=args.answer_field, question_field=args.question_field)
    if not result.answers:
        raise UsageError(f"{', '.join(map(str, args.files))}: no answers to check")
    if args.json is not None:
        import json

        write_atomic(args.json, json.dumps(result.to_json(), indent=1, ensure_ascii=False) + "\n")
    if not args.quiet:
        _render(result)
    return EXIT_GATE if result.summary["fail"] else EXIT_OK


def _render(result) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from vibes_eval.safety import strip_control

    console = Console()
    s = result.summary
    head = Table(title=f"check-answers: {s['answers']} answers from {len(s['files'])} file(s)", title_justify="left")
    for col in ("status", "answers", "share"):
        head.add_column(col, justify="left" if col == "status" else "right")
    for status, style in (("pass", "green"), ("warn", "yellow"), ("fail", "red")):
        head.add_row(Text(status.upper(), style=style), str(s[status]), f"{s[status] / max(1, s['answers']):.1%}")
    if s["skipped_records"]:
        head.caption = f"{s['skipped_records']} records without a text answer (log-likelihood tasks) skipped"
    console.print(head)
    if s["by_probe"]:
        probes = Table(title="by probe", title_justify="left")
        for col in ("probe", "fail", "warn"):
            probes.add_column(col, justify="left" if col == "probe" else "right")
        for name, counts in s["by_probe"].items():
            probes.add_row(name, str(counts["fail"]), str(counts["warn"]))
        console.print(probes)
    worst = [a for a in result.answers if a.status == "fail"] + [a for a in result.answers if a.status == "warn"]
    if worst:
        table = Table(title=f"worst answers (first {min(WORST_SHOWN, len(worst))} of {len(worst)})",
                      title_justify="left", expand=True)
        for col in ("#", "where", "probes", "answer"):
            table.add_column(col, overflow="fold")
        for a in worst[:WORST_SHOWN]:
            clip = " ".join(a.answer.split())
            clip = clip if len(clip) <= 120 else clip[:117] + "..."
            table.add_row(str(a.index), Text(strip_control(f"{Path(a.file).name}: {a.position}")),
                          ", ".join(f"{f.probe} {f.status}" for f in a.probes), Text(strip_control(clip)))
        console.print(table)
