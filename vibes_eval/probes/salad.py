"""Word salad and symbol salad: text made of words (or symbols) in no grammatical order.

`nonwords` cannot see a salad of real words ("to to a,, new do s is and d t, in in is" from a
LLaVA-NeXT GGUF with a wrong projector; "Grants factor Four encourages rib turkey" from a broken
vLLM build): every token is an English word. Two things real English always has are missing:
function words (the, of, is, and: 21-67% of the words of every healthy answer of 20+ words in
tests/fixtures/real_answers) and ordinary word lengths (mean 2.7-6.6 letters). Symbol salad
(`}`RESS, }`raint`, `<UNK> <UNK>`) is the share of tokens that are only symbols or glue letters to
code symbols. Fenced and inline code and `$$` math are left out. Numbers live in thresholds.py.
"""

from __future__ import annotations

import re
from functools import lru_cache

from vibes_eval.judge import thresholds as th

__all__ = ["FUNCTION_WORDS", "symbol_salad", "word_salad"]

FUNCTION_WORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is are was were be been being am do does did
    have has had it its this that these those there here he she they we you i me him her them us my your his
    their our not no nor so than then which who whom whose what when where why how all any some each both
    either neither one can could will would shall should may might must into onto over under about above below
    between through during after before up down out off again very also just only too such while because""".split()
)
"""English function words (articles, pronouns, auxiliaries, prepositions, conjunctions)."""

_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)*")
_CODE = re.compile(r"```.*?(?:```|\Z)|\$\$.*?(?:\$\$|\Z)|(?<!\S)`[^`\s][^`\n]*?`(?=[\s.,;:!?)]|\Z)", re.S)
_CODE_SYMBOLS = re.compile(r"[`{}\\^~<>|]")
_LETTER = re.compile(r"[^\W\d_]")
_PLAIN_SYMBOLS = frozenset("- — – & / + = * • | ... # ## ### #### ** % $ → ← × : ; , . ! ? ( ) \" ' -> <- => < > <= >= ~".split())
"""Symbol-only tokens ordinary text has (dashes, markdown, units, arrows)."""


@lru_cache(maxsize=65536)
def _common(word: str) -> bool:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en") >= th.SALAD_COMMON_ZIPF


def word_salad(text: str) -> dict[str, float | int] | None:
    """Function-word share and mean word length of an English answer of 20+ words.

    Returns:
        The numbers, or None when the answer is too short or not mostly common English words (a
        French answer has no English function words and is no salad); needs wordfreq.
    """
    words = _WORD.findall(_CODE.sub(" ", text))
    if len(words) < th.SALAD_MIN_WORDS:
        return None
    longer = [w.lower() for w in words if len(w) > 1]
    english = sum(map(_common, longer)) / max(1, len(longer))
    if english < th.SALAD_ENGLISH_SHARE:
        return None
    return {
        "words": len(words),
        "english_share": round(english, 3),
        "function_word_share": round(sum(w.lower() in FUNCTION_WORDS for w in words) / len(words), 3),
        "mean_word_length": round(sum(map(len, words)) / len(words), 2),
    }


def symbol_salad(text: str) -> dict[str, float | int] | None:
    """Share of whitespace-separated tokens that are junk; None below 5 tokens."""
    tokens = _CODE.sub(" ", text).split()
    if len(tokens) < th.SYMBOL_SALAD_MIN_TOKENS:
        return None
    junk = 0
    for token in tokens:
        core = token.strip(".,;:!?\"'()[]*")
        if not core:
            continue
        if _CODE_SYMBOLS.search(core) and _LETTER.search(core):
            junk += 1  # letters glued to code symbols: }`RESS, <UNK>, wob\',\repungen
        elif not any(c.isalnum() for c in core) and core not in _PLAIN_SYMBOLS:
            junk += 1  # only symbols, and not ones ordinary text uses
    return {"tokens": len(tokens), "junk_tokens": junk, "junk_share": round(junk / len(tokens), 3)}
