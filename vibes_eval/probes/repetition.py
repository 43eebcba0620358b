"""Repetition in one answer: repeated n-grams, runs of a word or a character, the zlib ratio.

`loopiness(text)` is the finding behind the `loops` text probe (probes/text.py); `runaway`
reads it too, to tell a loop that hit max_new_tokens from a long answer.
"""

from __future__ import annotations

import re
import zlib

from vibes_eval.judge import thresholds as th
from vibes_eval.records import ProbeName, Signal, Status

__all__ = ["loopiness"]


def _signal(probe: str, status: Status, score: float | None, reason: str, **evidence: float | int) -> Signal:
    return Signal(probe=probe, status=status, score=score, reason=reason, evidence=evidence)


# the same word or punctuation n times in a row: "very very" is English, "the the the the" is not
_WORD_RUN_WARN, _WORD_RUN_FAIL = 3, 4
# the same character n times in a row ("!!!!!!" is fp16 overflow's signature). Digits never count
# (1000000 is a number), letters get a little room ("Hmmmm"), markdown rules and ellipses a lot.
_CHAR_RUNS = {"symbol": (4, 6), "letter": (5, 8), "rule": (16, 32)}
_RULE_CHARS = frozenset("-=_*.~#")

_WORD = re.compile(r"\w+")
_TOKEN = re.compile(r"\w+|[^\w\s]+")
_CHAR_RUN = re.compile(r"([^\s\d])\1*")
_LOOP_HINT = "a decoding loop; check the dtype (fp16 overflow), the stop string and the template"


def _repeated_share(words: list[str], n: int) -> float:
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def _longest_run(items: list[str]) -> tuple[int, str]:
    best, best_item, run = 0, "", 0
    for i, item in enumerate(items):
        run = run + 1 if i and item == items[i - 1] else 1
        if run > best:
            best, best_item = run, item
    return best, best_item


def _char_run_limits(char: str) -> tuple[int, int]:
    return _CHAR_RUNS["rule" if char in _RULE_CHARS else "letter" if char.isalpha() else "symbol"]


def loopiness(text: str) -> Signal:
    """The `loops` finding on `text` (probes/text.py's `loops` and `runaway` read it)."""
    words = _WORD.findall(text.lower())
    word_run, word = _longest_run(_TOKEN.findall(text.lower()))
    # the worst run, not the longest: "!!!!!!" matters more than a markdown "|----------|"
    char_run, char, (char_warn, char_fail) = max(
        ((len(m.group(0)), m.group(1), _char_run_limits(m.group(1))) for m in _CHAR_RUN.finditer(text)),
        key=lambda r: (r[0] - 1) / (r[2][1] - 1),
        default=(0, "", _CHAR_RUNS["symbol"]),
    )
    share3 = _repeated_share(words, 3) if len(words) >= th.MIN_WORDS_FOR_NGRAMS else 0.0
    share2 = _repeated_share(words, 2) if len(words) >= th.MIN_WORDS_FOR_NGRAMS else 0.0
    raw = text.encode()
    ratio = len(raw) / len(zlib.compress(raw, 9)) if len(raw) >= th.MIN_CHARS_FOR_ZLIB else 0.0
    evidence: dict[str, float | int] = {
        "words": len(words),
        "chars": len(text),
        "repeated_2gram_share": round(share2, 3),
        "repeated_3gram_share": round(share3, 3),
        "longest_word_run": word_run,
        "worst_char_run": char_run,
        "compression_ratio": round(ratio, 2),
    }
    # (severity scaled so that 1.0 sits at the FAIL threshold, warn?, fail?, reason)
    findings = [
        (share3 / th.NGRAM_FAIL, share3 >= th.NGRAM_WARN, share3 >= th.NGRAM_FAIL,
         f"{share3:.0%} of the answer's 3-word sequences repeat an earlier one: {_LOOP_HINT}."),
        ((ratio - th.ZLIB_BASE) / (th.ZLIB_FAIL - th.ZLIB_BASE), ratio >= th.ZLIB_WARN, ratio >= th.ZLIB_FAIL,
         f"The answer compresses {ratio:.1f}x with zlib (healthy text 1-2x): mostly repetition, {_LOOP_HINT}."),
        ((word_run - 1) / (_WORD_RUN_FAIL - 1), word_run >= _WORD_RUN_WARN, word_run >= _WORD_RUN_FAIL,
         f"{word!r} repeats {word_run} times in a row: {_LOOP_HINT}."),
        ((char_run - 1) / (char_fail - 1), char_run >= char_warn, char_run >= char_fail,
         f"The answer has a run of {char_run} {char!r} characters: {_LOOP_HINT}."),
    ]  # fmt: skip
    _, warn, fail, reason = max(findings, key=lambda f: (f[2], f[1], f[0]))
    score = round(min(1.0, max(0.0, 1.0 - 0.5 * max(f[0] for f in findings))), 3)
    if fail:
        return _signal(ProbeName.LOOPS, Status.FAIL, score, reason, **evidence)
    if warn:
        return _signal(ProbeName.LOOPS, Status.WARN, score, f"Borderline: {reason[0].lower()}{reason[1:]}", **evidence)
    reason = "No loop: the repetition stays within what ordinary English has."
    return _signal(ProbeName.LOOPS, Status.PASS, score, reason, **evidence)
