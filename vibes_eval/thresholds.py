"""Every number a probe or the verdict compares a signal with, in one place.

The probes (`probes/grounding.py`, `probes/loader.py`), the verdict, `bench/detection.py` and
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
    "Threshold",
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

README_FAILS_WHEN: dict[str, str] = {
    "`image_gain`": IMAGE_GAIN.words(),
    "`cross_match`": f"p {CROSS_MATCH_ALPHA.fails} {CROSS_MATCH_ALPHA.value:g}",
    "`counterfactual`": COUNTERFACTUAL_SAME.words(),
    "`likelihood`": f"{LIKELIHOOD.fails} {LIKELIHOOD.value:.1f}",
    "`template_fit`": f"{TEMPLATE_MARGIN.fails} {TEMPLATE_MARGIN.value:.1f} {TEMPLATE_MARGIN.unit}",
    "`projector_norm` / `collapse`": f"{NORM_RATIO_LOW.words()} / {COLLAPSE_SPREAD.words()}",
}
"""How the README signal table's "fails when" cell starts, for each signal row it states a number for."""
