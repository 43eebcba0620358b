"""Every number a probe or the verdict compares a signal with, in one place.

The probes (`probes/grounding.py`, `probes/projector.py`, `probes/text.py`, `probes/repetition.py`),
the verdict, the baseline's regression rule, `bench/detection.py` and
the README's signal table all read these; `tests/test_thresholds.py` checks that the README's
"fails when" column says what is here. The values sit where the toy zoo's healthy and broken
checkpoints are far apart (`python bench/detection.py` prints every signal per variant next to
its threshold) and where a real LLaVA's should be too.
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
# n-gram shares are noise on a handful of words ("a red circle and a red square" repeats a bigram)
MIN_WORDS_FOR_NGRAMS = 8
# share of 3-grams that repeat an earlier one: LLaVA-style descriptions measured 0.00-0.03, a tail
# loop ("... The bus is red. The bus is red. The bus is red.") 0.4
NGRAM_WARN, NGRAM_FAIL = 0.25, 0.4
# raw / zlib-compressed length (Whisper calls > 2.4 repetitive); healthy answers measured 1.0-2.1,
# rising slowly with length. zlib's fixed overhead makes short texts meaningless, hence the minimum.
MIN_CHARS_FOR_ZLIB = 100
ZLIB_BASE, ZLIB_WARN, ZLIB_FAIL = 1.5, 2.4, 3.0


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
}
"""How the README signal table's "fails when" cell starts, for each signal row it states a number for."""
