"""Every number a probe or the verdict compares a signal with, in one place.

The probes (`probes/grounding.py`, `probes/projector.py`, `probes/text.py`, `probes/repetition.py`),
the verdict, the baseline's regression rule, `bench/detection.py` and
the README's signal table all read these; `tests/test_thresholds.py` checks that the README's
"fails when" column says what is here. The values sit where the toy zoo's healthy and broken
checkpoints are far apart (`python bench/detection.py` prints every signal per variant next to
its threshold) and where a real LLaVA's should be too; the answer probes' where published models'
real answers and broken outputs from issue threads are (`python bench/real_answers.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "COLLAPSE_SPREAD",
    "COUNTERFACTUAL_SAME",
    "CROSS_MATCH_ALPHA",
    "GIBBERISH_SHARE",
    "HEALTHY_TOY",
    "IMAGE_GAIN",
    "LIKELIHOOD",
    "MISMATCH_STRUCTURE",
    "NORM_RATIO_LOW",
    "README_FAILS_WHEN",
    "TEMPLATE_MARGIN",
    "REGRESSION_TOLERANCES",
    "Threshold",
    "Tolerance",
]


@dataclass(frozen=True)
class Threshold:
    """A limit on one signal: the value, its unit, and which side of it fails."""

    value: float
    fails: str
    """The comparison that fails: "<", "<=", ">", ">="."""
    unit: str = ""
    why: str = ""

    def failed(self, x: float) -> bool:
        """Whether `x` is on the failing side."""
        return {"<": x < self.value, "<=": x <= self.value, ">": x > self.value, ">=": x >= self.value}[self.fails]

    def words(self) -> str:
        """`< 0.5 nats/token`: how the README and bench/detection.py state it."""
        return f"{self.fails} {self.value:g}" + (f" {self.unit}" if self.unit else "")


IMAGE_GAIN = Threshold(
    0.5, "<", "nats/token", "below it the real image explains the references no better than a blank one"
)
CROSS_MATCH_ALPHA = Threshold(
    0.01, ">", "p-value", "cross-match passes when a blind model would rank its own images this well with p <= this"
)
COUNTERFACTUAL_SAME = Threshold(
    0.8, ">=", "", "mean similarity to the blank/swap answers at which the model looks image-blind"
)
LIKELIHOOD = Threshold(-4.0, "<", "", "references this unlikely under the real image: the LLM is broken")
TEMPLATE_MARGIN = Threshold(1.0, ">", "nats/token", "by how much another known template must beat the one in use")
NORM_RATIO_LOW = Threshold(0.05, "<", "", "visual tokens this much smaller than text embeddings carry next to nothing")
COLLAPSE_SPREAD = Threshold(
    1e-3, "<", "", "visual tokens that differ between images by less than this share are collapsed"
)
MISMATCH_STRUCTURE = Threshold(
    2.5, ">=", "nats/token", "best-vs-median image spread that marks a suite with mismatched images (image_gain warns)"
)
GIBBERISH_SHARE = Threshold(
    0.5, ">=", "of answers", "share of answers failing a language probe that makes the checkpoint gibberish"
)

HEALTHY_TOY = {"image_gain": 2.4, "cross_match": 0.88, "counterfactual": 0.41, "likelihood": -0.0}
"""What the healthy toy shows (bench/detection.py), quoted in reasons so a number has a scale."""

# --- answer probes (probes/text.py, probes/repetition.py) -----------------------------------------

# a lexicon cannot know every name or brand, so one unknown word never fails an answer on its own
NONWORD_WARN, NONWORD_FAIL = 0.25, 0.5
MIN_NONWORDS_TO_FAIL = 2
ECHO_WARN, ECHO_FAIL = 0.6, 0.8
# below this many question words only an exact repeat counts ("Color?" -> "Color: red." is fine)
MIN_QUESTION_WORDS = 3
# the whole question verbatim anywhere in the answer ("Sure. What color is the circle? Red.")
MIN_QUESTION_WORDS_CONTAINED = 4
# partial echoes are judged on long questions only, from a share or this many leading words
MIN_QUESTION_WORDS_PARTIAL = 6
ECHO_WARN_LEADING_WORDS = 6
# Calibrated on real answers: 2,507 healthy answers of published models (2,097 LLaVA-family; the repo's
# tests/fixtures/real_answers holds 646 of them) and 25 broken outputs from issue threads;
# `python bench/real_answers.py` prints the figures (bench/README.md quotes both corpora).
# A loop is a unit *back to back*; long structured answers repeat
# phrasing *apart* (they compress 3-6x with zlib and repeat up to 68% of their 3-grams, yet are
# healthy), so neither zlib nor the 3-gram share fails an answer below REPEATED_3GRAM.
MIN_WORDS_FOR_NGRAMS = 8
# n-gram shares are noise on a handful of words ("a red circle and a red square" repeats a bigram)
MIN_CHARS_FOR_ZLIB = 100
"""zlib's ratio is evidence only (no longer decides): its fixed overhead makes short texts meaningless."""
LOOP_COPIES = Threshold(4, ">=", "copies", "a unit of 1-16 tokens back to back (healthy real answers: at most 2)")
LOOP_COPIES_WARN = 3
LOOP_LONG_SPAN = 15
"""Tokens: 3 back-to-back copies spanning this many tokens fail too (a sentence three times)."""
GLUED_COPIES = 5
"""The same 2-12 characters glued together this many times fail (SelfSelfSelf, <pad><pad>)."""
NUMBER_COPIES = 8
"""A bare number back to back ("2 2 2 2 2 2 2 2"); 1,000,000,000,000 is 4 copies of ", 000"."""
DIGIT_RUN, DIGIT_RUN_WARN = 12, 9
"""One digit repeated (000000000000 fails); 1000000 is a number."""
REPEATED_3GRAM = Threshold(0.75, ">=", "of 3-grams", "3-word sequences repeating an earlier one (healthy up to 0.68)")
REPEATED_3GRAM_WARN = 0.45
NUMBERED_COPIES_WARN = 6
"""Back-to-back copies of a line whose only change is a number ("1. red 2. red 3. red ...") warn."""
SAME_SENTENCE_WARN = 4
"""The same sentence (6+ words) this many times anywhere in one answer warns (never fails)."""
RULE_RUN_WARN, RULE_RUN_FAIL = 5, 8
"""A markdown rule token in a row ("* * *" is a horizontal rule; eight is a loop)."""
RUNAWAY_COPIES = 2.5
"""Cut by max_new_tokens, a tail that repeats a unit this many times is a loop, not a long answer."""
NONWORD_SHARE = Threshold(NONWORD_FAIL, ">=", "of words", "words wordfreq does not know (2+ of them)")
SALAD_MIN_WORDS = 20
SALAD_ENGLISH_SHARE = 0.75
"""word_salad judges answers whose 2+ letter words are at least this share common English (a French
answer has no English function words and is no salad; word salads of real words score 0.93-1.0)."""
SALAD_COMMON_ZIPF = 3.0
WORD_SALAD_FUNCTION = Threshold(0.10, "<", "of words", "function words in an English answer of 20+ words (healthy min 0.21)")
WORD_SALAD_FUNCTION_WARN = 0.18
WORD_SALAD_LENGTH = Threshold(2.4, "<", "letters", "mean word length of an English answer of 20+ words (healthy min 2.66)")
WORD_SALAD_LENGTH_WARN = 2.6
SYMBOL_SALAD = Threshold(0.3, ">=", "of tokens", "tokens that are only symbols or letters glued to code symbols (healthy max 0.17)")
SYMBOL_SALAD_WARN = 0.2
SYMBOL_SALAD_MIN_TOKENS = 5
SYMBOL_SALAD_MIN_JUNK = 3
"""Fewer junk tokens than this never warn (a short answer with `{a: 1}` in it is no salad)."""
TOO_SHORT = Threshold(1, "<=", "words", "words of 2+ letters when a description is asked for (healthy min 2)")
TOO_SHORT_WARN = 3
ECHO_SHARE = Threshold(ECHO_FAIL, ">=", "", "share of the question repeated at the start of the answer")
ECHO_RESTATED_WORDS = 12
"""An answer that echoes the question and then adds at least max(this, the question's length) words of its
own restates the question before answering (Bard and LLaVA do): no echo."""


# --- the baseline's regression rule (judge/baseline.py) --------------------------------------------


@dataclass(frozen=True)
class Tolerance:
    """How far a signal may move against the baseline before it is a regression."""

    kind: str
    """`relative`: a share of the baseline value; `absolute`: in the signal's own unit."""
    amount: float
    falls: bool = True
    """True: a fall is the regression; False: a rise is (template_fit's margin)."""

    def words(self) -> str:
        way = "falls" if self.falls else "rises"
        return f"{way} by {self.amount:.0%} or more" if self.kind == "relative" else f"{way} by {self.amount:g} or more"

    def regressed(self, before: float, after: float) -> bool:
        move = before - after if self.falls else after - before
        if self.kind == "relative":
            return before > 0 and move >= self.amount * before - 1e-9
        return move >= self.amount - 1e-9


REGRESSION_TOLERANCES: dict[str, Tolerance] = {
    "image_gain": Tolerance("relative", 0.30),  # healthy toy 2.4 nats/token; a model that stops looking loses most of it
    "cross_match": Tolerance("absolute", 0.25),  # share of comparisons won: healthy toy 0.88, chance 0.5, blind toys 0.49-0.52
    "likelihood": Tolerance("absolute", 1.0),  # nats per token
    "template_fit": Tolerance("absolute", 0.5, falls=False),  # another template's margin grows
}
"""Signals that gate against a baseline (pass_rate and counterfactual are shown, not gated: the
prompt rule covers the first, the second is evidence only)."""


README_FAILS_WHEN: dict[str, str] = {
    "`image_gain`": IMAGE_GAIN.words(),
    "`cross_match`": f"p {CROSS_MATCH_ALPHA.fails} {CROSS_MATCH_ALPHA.value:g}",
    "`counterfactual`": COUNTERFACTUAL_SAME.words(),
    "`likelihood`": f"{LIKELIHOOD.fails} {LIKELIHOOD.value:.1f}",
    "`template_fit`": f"{TEMPLATE_MARGIN.fails} {TEMPLATE_MARGIN.value:.1f} {TEMPLATE_MARGIN.unit}",
    "`projector_norm` / `collapse`": f"{NORM_RATIO_LOW.words()} / {COLLAPSE_SPREAD.words()}",
    "`loops`": LOOP_COPIES.words(),
    "`nonwords`": NONWORD_SHARE.words(),
    "`word_salad`": f"{WORD_SALAD_FUNCTION.words()} or {WORD_SALAD_LENGTH.words()}",
    "`symbol_salad`": SYMBOL_SALAD.words(),
    "`prompt_echo`": ECHO_SHARE.words(),
    "`too_short`": TOO_SHORT.words(),
}
"""How the README signal table's "fails when" cell starts, for each signal row it states a number for."""
