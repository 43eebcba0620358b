"""The text probes and the refusal recognizer on real answers: false alarms, catches, refusals.

    python bench/real_answers.py [--corpus tests/fixtures/real_answers] [--json OUT] [--show N]

Every answer of the corpus (tests/fixtures/real_answers/PROVENANCE.md: published LLaVA-family
models, chat models, broken outputs pasted in issue threads) is judged exactly as
`vibes-eval check-answers` judges it (`vibes_eval.answers.judge_answer`: every text probe but
runaway). Prints, per source file and model, the share of healthy answers that FAIL and WARN, each
broken output and whether it FAILs, and how many refusal requests the recognizer calls a refusal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from vibes_eval.answers import judge_answer  # noqa: E402
from vibes_eval.probes.expect import is_refusal  # noqa: E402


def not_detectable(corpus: Path) -> dict[str, str]:
    """Broken outputs judged not detectable from their text alone, and why (the acceptance list)."""
    path = corpus / "not_text_detectable.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def load(corpus: Path) -> list[dict]:
    rows = []
    for f in sorted(corpus.glob("*.jsonl")):
        for n, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            row = json.loads(line)
            row["file"], row["line"] = f.name, n
            rows.append(row)
    return rows


def judge(rows: list[dict]) -> None:
    for r in rows:
        r["status"], findings = judge_answer(r["answer"], r.get("question"))
        r["findings"] = [f"{f.probe}:{f.status}" for f in findings]
        r["refusal"] = is_refusal(r["answer"])


def healthy_table(rows: list[dict]) -> list[str]:
    groups = defaultdict(list)
    for r in rows:
        if r["kind"] == "healthy":
            groups[(r["file"], r["model"])].append(r)
    out = ["| source | model | answers | FAIL | WARN | probes that warned/failed |", "|---|---|---|---|---|---|"]
    for (f, model), rs in sorted(groups.items()):
        fail = sum(r["status"] == "fail" for r in rs)
        warn = sum(r["status"] == "warn" for r in rs)
        probes = Counter(x for r in rs for x in r["findings"])
        out.append(f"| {f} | {model} | {len(rs)} | {fail} ({fail / len(rs):.1%}) | {warn} ({warn / len(rs):.1%}) | "
                   f"{', '.join(f'{k} {v}' for k, v in sorted(probes.items())) or '-'} |")
    hs = [r for r in rows if r["kind"] == "healthy"]
    fail, warn = sum(r["status"] == "fail" for r in hs), sum(r["status"] == "warn" for r in hs)
    out.append(f"| **all** | | **{len(hs)}** | **{fail} ({fail / len(hs):.2%})** | **{warn} ({warn / len(hs):.2%})** | |")
    return out


def broken_table(rows: list[dict], skip: dict[str, str]) -> list[str]:
    out = ["| source | model | caught (FAIL) | probes |", "|---|---|---|---|"]
    for r in rows:
        if r["kind"] == "broken":
            caught = "yes" if r["status"] == "fail" else f"no ({r['status']})"
            out.append(f"| {r['source']} | {r['model']} | {caught} | {', '.join(r['findings']) or '-'} |")
    bs = [r for r in rows if r["kind"] == "broken"]
    detectable = [r for r in bs if r["source"] not in skip]
    caught = sum(r["status"] == "fail" for r in detectable)
    out.append(f"\n{caught}/{len(detectable)} text-detectable broken outputs FAIL ({len(bs)} in all; "
               f"{len(bs) - len(detectable)} judged not detectable from text:")
    out += [f"- {url}: {why}" for url, why in skip.items()]
    return out


def refusal_table(rows: list[dict]) -> list[str]:
    groups = defaultdict(list)
    for r in rows:
        if r["kind"] == "refusal_request":
            groups[(r["file"], r["model"])].append(r)
    out = ["| source | model | requests | recognized as refusal | FAIL (text probes) |", "|---|---|---|---|---|"]
    for (f, model), rs in sorted(groups.items()):
        ref = sum(r["refusal"] for r in rs)
        out.append(f"| {f} | {model} | {len(rs)} | {ref} ({ref / len(rs):.0%}) | {sum(r['status'] == 'fail' for r in rs)} |")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", type=Path, default=REPO / "tests" / "fixtures" / "real_answers")
    ap.add_argument("--json", type=Path, help="write every answer's status and findings here")
    ap.add_argument("--show", type=int, default=5, help="healthy answers shown that warn or fail")
    args = ap.parse_args(argv)
    rows = load(args.corpus)
    judge(rows)
    print("## Healthy answers\n", *healthy_table(rows), sep="\n")
    flagged = [r for r in rows if r["kind"] == "healthy" and r["status"] != "pass"][: args.show]
    for r in flagged:
        print(f"- {r['file']}:{r['line']} {r['status']} {', '.join(r['findings'])}: {r['answer'][:100]!r}")
    print("\n## Broken outputs\n", *broken_table(rows, not_detectable(args.corpus)), sep="\n")
    print("\n## Refusal requests\n", *refusal_table(rows), sep="\n")
    if args.json:
        keep = ("file", "line", "kind", "model", "source", "status", "findings", "refusal")
        args.json.write_text(json.dumps([{k: r[k] for k in keep} for r in rows], indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
