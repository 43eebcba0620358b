"""Repetition in one answer: back-to-back repeats of a unit, runs, glued copies, repeated 3-grams.

`loopiness(text)` is the finding behind the `loops` text probe (probes/text.py); `runaway` reads
it too, to tell a loop that hit max_new_tokens from a long answer.

Calibrated on real answers (tests/fixtures/real_answers, `python bench/real_answers.py`): a loop
is the same unit *back to back* ("4k - 4k - 4k", "SelfSelfSelf", "2 2 2 2", a sentence three
times), which does not grow with the answer's length. Long structured answers (a chart described
country by country, a lecture listing parallel definitions) repeat phrasing *apart*: they compress
3-6x with zlib and repeat up to 68% of their 3-grams, yet are healthy, so neither measure fails an
answer below the numbers in `judge/thresholds.py`. Fenced code blocks are left out (code repeats).
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from collections.abc import Callable, Sequence

from vibes_eval.judge import thresholds as th
from vibes_eval.records import Signal, Status

__all__ = ["loopiness", "repeats"]

_TOKEN = re.compile(r"\w+|[^\w\s]+")
_WORD = re.compile(r"\w+")
_SENTENCE = re.compile(r"[^.!?\n]+")
_LETTERS = re.compile(r"[^\W\d_]")
_CLOSED_FENCE = re.compile(r"```.*?```", re.S)
_GLUED = re.compile(r"(\S{2,12}?)\1{2,}")  # "SelfSelfSelf", "<pad><pad><pad>", "特特特"
_DIGIT_RUN = re.compile(r"(\d)\1*")
_CHAR_RUN = re.compile(r"([^\s\d])\1*")
_RULE_CHARS = frozenset("-=_*.~#")
# the same character n times in a row ("!!!!!!" is fp16 overflow's signature). Digits have their own
# rule (1000000 is a number), letters get a little room ("Hmmmm"), markdown rules and ellipses a lot.
_CHAR_RUNS = {"symbol": (4, 6), "letter": (5, 8), "rule": (16, 32)}
_MAX_UNIT = 16  # tokens; longer units are caught as repeated sentences
_LOOP_HINT = "a decoding loop; check the dtype (fp16 overflow), the stop string and the template"


def _signal(status: Status, score: float, reason: str, **evidence: float | int) -> Signal:
    return Signal(probe="loops", status=status, score=score, reason=reason, evidence=evidence)


def repeats(items: Sequence[str], max_unit: int, worth: Callable[[Sequence[str]], bool]) -> tuple[float, int, int]:
    """The longest back-to-back repetition of a unit of at most `max_unit` items.

    Returns:
        (copies, unit length, span in items), copies possibly fractional ("a b a b a" is 2.5 copies
        of "a b"); (1.0, 0, 0) when nothing repeats. Units for which `worth(unit)` is false are
        not counted.
    """
    best = (1.0, 0, 0)
    for n in range(1, min(max_unit, len(items) // 2) + 1):
        run = 0
        for i in range(len(items) - n):
            if items[i] != items[i + n]:
                run = 0
                continue
            run += 1
            if (run + n) / n > best[0] and worth(items[i + 1 - run : i + 1 - run + n]):
                best = ((run + n) / n, n, run + n)
    return best


def _wordy(unit: Sequence[str]) -> bool:
    """A unit worth calling a loop: some token has letters, and it is not a table row ("| yes | yes |")."""
    return "|" not in unit and any(_LETTERS.search(t) for t in unit)


def _numbers(unit: Sequence[str]) -> bool:
    return all(t.isdigit() for t in unit)


def _runs(tokens: list[str]) -> tuple[int, str, int]:
    """The longest run of one token (not a markdown rule) and the longest run of a rule token ("* * *")."""
    best, best_token, rule, run = 0, "", 0, 0
    for i, tok in enumerate(tokens):
        run = run + 1 if i and tok == tokens[i - 1] else 1
        if set(tok) <= _RULE_CHARS:
            rule = max(rule, run)
        elif run > best:
            best, best_token = run, tok
    return best, best_token, rule


def _char_run(text: str) -> tuple[int, str, tuple[int, int]]:
    """The worst run of one character, by its class's limits (not the longest: "!!!!!!" beats "|------|")."""

    def limits(char: str) -> tuple[int, int]:
        return _CHAR_RUNS["rule" if char in _RULE_CHARS else "letter" if char.isalpha() else "symbol"]

    return max(
        ((len(m.group(0)), m.group(1), limits(m.group(1))) for m in _CHAR_RUN.finditer(text)),
        key=lambda r: (r[0] - 1) / (r[2][1] - 1),
        default=(0, "", _CHAR_RUNS["symbol"]),
    )


def _share3(words: list[str]) -> float:
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return (len(grams) - len(set(grams))) / len(grams) if grams else 0.0


def _measure(text: str) -> dict[str, float | int | str]:
    """Every repetition number of one answer (fenced code left out)."""
    text = _CLOSED_FENCE.sub(" ", text)
    tokens = _TOKEN.findall(text.lower())
    words = _WORD.findall(text.lower())
    copies, unit, span = repeats(tokens, _MAX_UNIT, _wordy)
    number_copies = repeats(tokens, 2, _numbers)[0]
    sentences = [s for s in (" ".join(_TOKEN.findall(x.lower())) for x in _SENTENCE.findall(text)) if s]
    sentence_copies = repeats(sentences, 4, lambda u: any(len(_LETTERS.findall(s)) >= 3 for s in u))[0]
    numbered = repeats([re.sub(r"\d+", "0", t) for t in tokens], _MAX_UNIT, lambda u: len(u) >= 2 and _wordy(u))[0]
    same = Counter(s for s in sentences if len(s.split()) >= 6)
    glued = max((len(m.group(0)) // len(m.group(1)) for m in _GLUED.finditer(text) if _LETTERS.search(m.group(1))),
                default=0)
    word_run, word, rule_run = _runs(tokens)
    char_run, char, char_limits = _char_run(text)
    return {
        "words": len(words), "chars": len(text), "copies": round(copies, 2), "unit_tokens": unit, "span_tokens": span,
        "number_copies": round(number_copies, 2), "sentence_copies": round(sentence_copies, 2),
        "numbered_copies": round(numbered, 2), "same_sentence": max(same.values(), default=0), "glued_copies": glued,
        "digit_run": max((len(m.group(0)) for m in _DIGIT_RUN.finditer(text)), default=0),
        "longest_word_run": word_run, "word": word, "rule_run": rule_run,
        "worst_char_run": char_run, "char": char, "char_warn": char_limits[0], "char_fail": char_limits[1],
        "repeated_3gram_share": round(_share3(words), 3) if len(words) >= th.MIN_WORDS_FOR_NGRAMS else 0.0,
    }  # fmt: skip


def _findings(m: dict) -> list[tuple[bool, bool, str]]:
    """(warn?, fail?, reason) for every rule, worst first when sorted."""
    copies, unit = m["copies"], m["unit_tokens"]
    return [
        (copies >= th.LOOP_COPIES_WARN, copies >= th.LOOP_COPIES.value
         or (copies >= th.LOOP_COPIES_WARN and m["span_tokens"] >= th.LOOP_LONG_SPAN),
         f"A {unit}-token unit repeats {copies:g} times back to back: {_LOOP_HINT}."),
        (False, m["sentence_copies"] >= th.LOOP_COPIES_WARN,
         f"A sentence repeats {m['sentence_copies']:g} times back to back: {_LOOP_HINT}."),
        (False, m["glued_copies"] >= th.GLUED_COPIES,
         f"A piece of text repeats {m['glued_copies']} times glued together: {_LOOP_HINT}."),
        (m["number_copies"] >= th.LOOP_COPIES_WARN + 2, m["number_copies"] >= th.NUMBER_COPIES,
         f"A number repeats {m['number_copies']:g} times: {_LOOP_HINT}."),
        (m["digit_run"] >= th.DIGIT_RUN_WARN, m["digit_run"] >= th.DIGIT_RUN,
         f"The answer has a run of {m['digit_run']} identical digits: {_LOOP_HINT}."),
        (m["longest_word_run"] >= th.LOOP_COPIES_WARN, m["longest_word_run"] >= th.LOOP_COPIES.value,
         f"{m['word']!r} repeats {m['longest_word_run']} times in a row: {_LOOP_HINT}."),
        (m["rule_run"] >= th.RULE_RUN_WARN, m["rule_run"] >= th.RULE_RUN_FAIL,
         f"A symbol repeats {m['rule_run']} times in a row: {_LOOP_HINT}."),
        (m["worst_char_run"] >= m["char_warn"], m["worst_char_run"] >= m["char_fail"],
         f"The answer has a run of {m['worst_char_run']} {m['char']!r} characters: {_LOOP_HINT}."),
        (m["repeated_3gram_share"] >= th.REPEATED_3GRAM_WARN, m["repeated_3gram_share"] >= th.REPEATED_3GRAM.value,
         f"{m['repeated_3gram_share']:.0%} of the answer's 3-word sequences repeat an earlier one: {_LOOP_HINT}."),
        (m["numbered_copies"] >= th.NUMBERED_COPIES_WARN, False,
         f"One line repeats {m['numbered_copies']:g} times with only its numbers changing."),
        (m["same_sentence"] >= th.SAME_SENTENCE_WARN, False,
         f"One sentence appears {m['same_sentence']} times in the answer (not back to back): read it."),
    ]  # fmt: skip


def loopiness(text: str) -> Signal:
    """The `loops` finding on `text` (probes/text.py's `loops` and `runaway` read it)."""
    m = _measure(text)
    found = _findings(m)
    evidence = {k: v for k, v in m.items() if not isinstance(v, str) and k not in ("char_warn", "char_fail")}
    raw = text.encode()
    # evidence only: healthy structured answers compress 3-6x, so zlib no longer decides (see the module doc)
    evidence["compression_ratio"] = round(len(raw) / len(zlib.compress(raw, 9)), 2) if len(raw) >= th.MIN_CHARS_FOR_ZLIB else 0.0
    fails = [reason for warn, fail, reason in found if fail]
    warns = [reason for warn, fail, reason in found if warn and not fail]
    if fails:
        return _signal(Status.FAIL, 0.0, fails[0], **evidence)
    if warns:
        return _signal(Status.WARN, 0.5, f"Borderline: {warns[0][0].lower()}{warns[0][1:]}", **evidence)
    return _signal(Status.PASS, 1.0, "No loop: the repetition stays within what ordinary answers have.", **evidence)
