"""Frozen records that flow through a run: Request, Response, Signal, PromptResult, Verdict, Scorecard.

Everything a run produces ends up in a Scorecard, which round-trips through JSON
(`Scorecard.model_dump_json()` / `load_scorecard(path)`), so rendering and comparing need no torch.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vibes_eval.errors import ErrorKind

__all__ = [
    "SCHEMA_VERSION",
    "BaselineComparison",
    "BaselineRow",
    "Diagnosis",
    "ErrorKind",
    "FingerprintChange",
    "ProbeName",
    "PromptChange",
    "PromptResult",
    "Request",
    "Response",
    "Scorecard",
    "Signal",
    "Status",
    "Verdict",
    "load_scorecard",
    "worst",
]

SCHEMA_VERSION = 1


class Status(str, Enum):
    """How a signal, a prompt or a checkpoint came out. `error` means we could not evaluate."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    ERROR = "error"
    SKIP = "skip"


class ProbeName(str, Enum):
    """Every probe's name, as `Signal.probe` carries it (the verdict reads these, not string literals)."""

    # checkpoint level: the fingerprint
    PROJECTOR_MISSING = "projector_missing"
    PROJECTOR_WEIGHTS = "projector_weights"
    PROJECTOR_NORM = "projector_norm"
    COLLAPSE = "collapse"
    ADAPTER_PROJECTOR = "adapter_projector"
    """A PEFT adapter without projector tensors (reported for adapters only)."""
    # checkpoint level: the collected answers and likelihoods
    LIKELIHOODS = "likelihoods"
    """Scoring itself failed (an error signal per failure)."""
    COUNTERFACTUAL = "counterfactual"
    IMAGE_GAIN = "image_gain"
    CROSS_MATCH = "cross_match"
    LIKELIHOOD = "likelihood"
    TEMPLATE_FIT = "template_fit"
    # per answer
    EMPTY = "empty"
    LOOPS = "loops"
    RUNAWAY = "runaway"
    NONWORDS = "nonwords"
    WORD_SALAD = "word_salad"
    SYMBOL_SALAD = "symbol_salad"
    TEMPLATE_LEAK = "template_leak"
    PROMPT_ECHO = "prompt_echo"
    TOO_SHORT = "too_short"
    EXPECT = "expect"

    def __str__(self) -> str:
        return self.value


class Diagnosis(str, Enum):
    """What can be wrong with a checkpoint (a suite's `gate.fail_on` names these)."""

    PROJECTOR_DISCONNECTED = "projector_disconnected"
    IMAGE_BLIND = "image_blind"
    GIBBERISH = "gibberish"
    TEMPLATE_MISMATCH = "template_mismatch"
    IMAGE_TOKEN_MISMATCH = "image_token_mismatch"
    REFUSAL_MISSING = "refusal_missing"
    LOAD_ERROR = "load_error"

    def __str__(self) -> str:
        return self.value


_RANK = {Status.SKIP: 0, Status.PASS: 1, Status.WARN: 2, Status.FAIL: 3, Status.ERROR: 4}


def worst(statuses, default: Status = Status.PASS) -> Status:
    """The most severe of `statuses` (error > fail > warn > pass > skip); `default` if empty."""
    statuses = list(statuses)
    return max(statuses, key=_RANK.__getitem__) if statuses else default


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Request(_Frozen):
    """One question about one image, as sent to an Adapter."""

    prompt_id: str
    variant: Literal["real", "blank", "swap"] = "real"
    """Which image was asked with: the prompt's own, a blank one, or another prompt's."""
    image: Path | None
    """The image file; None means the blank image of the image's size."""
    question: str
    max_new_tokens: int = 64
    template: str | None = None
    """A known template name (vibes_eval.adapters.templates) to ask with instead of the one in use."""


class Response(_Frozen):
    """What the model said to one Request. A crash is an `error`, never an empty text."""

    prompt_id: str
    variant: Literal["real", "blank", "swap"] = "real"
    text: str = ""
    new_tokens: int = 0
    finish: Literal["eos", "length", "error"] = "eos"
    """Why generation stopped: an end-of-sequence token, max_new_tokens, or an error."""
    error: str | None = None
    error_kind: ErrorKind | None = None
    """What kind of crash `error` is (vibes_eval.errors.error_kind); set with every error."""


class Signal(_Frozen):
    """One probe's finding: status, a score in [0, 1], a reason a person can act on, evidence numbers."""

    probe: str
    status: Status
    score: float | None = None
    reason: str
    evidence: dict[str, Any] = Field(default_factory=dict)


class PromptResult(_Frozen):
    """One prompt of the suite with its answers and the signals read off them."""

    id: str
    category: str
    question: str
    image: str
    """Path of the image as the suite names it (relative to the suite file)."""
    image_path: str
    """Absolute path at run time (the HTML report embeds a thumbnail from it)."""
    answer: str | None
    """The real-image answer; None when the model crashed (see `error`)."""
    status: Status
    signals: list[Signal] = Field(default_factory=list)
    variants: dict[str, str] = Field(default_factory=dict)
    """Answers with counterfactual images: {'blank': ..., 'swap': ...}."""
    error: str | None = None
    error_kind: ErrorKind | None = None
    """What kind of crash `error` is; the verdict reads this, never the message."""
    reference: str | None = None


class Verdict(_Frozen):
    """The checkpoint's overall status, its diagnoses and the evidence in plain words."""

    status: Status
    diagnoses: list[str] = Field(default_factory=list)
    summary: list[str] = Field(default_factory=list)
    exit_code: int = 0


class BaselineRow(_Frozen):
    """One number before (the baseline) and after (this run), and whether it fell past its tolerance."""

    name: str
    before: float | None = None
    after: float | None = None
    change: str = ""
    """The change in words: `-2.38 (-99%)`."""
    tolerance: str = ""
    """When it counts as a regression: `falls by 30% or more`; empty where it does not gate."""
    status: Status = Status.PASS


class PromptChange(_Frozen):
    """A prompt whose status changed against the baseline."""

    id: str
    before: Status | None = None
    after: Status | None = None


class FingerprintChange(_Frozen):
    """A fingerprint field that differs from the baseline's (template, dtype, weights, versions...)."""

    key: str
    before: str | None = None
    after: str | None = None


class BaselineComparison(_Frozen):
    """This run against a baseline scorecard (`--baseline`): the before/after table that explains the verdict."""

    path: str
    checkpoint: str
    """The baseline's checkpoint."""
    same_suite: bool = True
    rows: list[BaselineRow] = Field(default_factory=list)
    prompts: list[PromptChange] = Field(default_factory=list)
    fingerprint: list[FingerprintChange] = Field(default_factory=list)
    regressed: bool = False


class Scorecard(_Frozen):
    """Everything one run found about one checkpoint."""

    schema_version: int = SCHEMA_VERSION
    checkpoint: str
    suite: dict[str, Any]
    """name, path and sha256 of the suite file."""
    fingerprint: dict[str, Any]
    prompts: list[PromptResult]
    signals: list[Signal] = Field(default_factory=list)
    """Checkpoint-level signals (loader probes, grounding aggregates)."""
    verdict: Verdict
    created: str
    seconds: float = 0.0
    run_id: str | None = None
    """Names the `vibes-eval run` that wrote this file; its HTML and JUnit files carry the same id."""
    baseline: BaselineComparison | None = None
    """Set by `--baseline`: the comparison with an earlier scorecard."""


def load_scorecard(path: Path) -> Scorecard:
    """Read a scorecard.json (or the scorecard.json inside a report folder)."""
    path = Path(path)
    if path.is_dir():
        path = path / "scorecard.json"
    return Scorecard.model_validate_json(path.read_text())
