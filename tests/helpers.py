"""Shared test helpers: repository paths, the suites, and `FakeAdapter`, a scripted model.

`FakeAdapter` implements the Adapter interface without weights: it answers each prompt with
the suite's own reference (or with what a broken model would say) and scores references by a
rule, so runner, verdict, render and compare tests run in milliseconds without the toy zoo.
Import with `from helpers import FakeAdapter, SHAPES` (pytest puts tests/ on sys.path).
"""

from __future__ import annotations

from pathlib import Path

from vibes_eval.adapters.base import Adapter
from vibes_eval.errors import error_kind, one_line
from vibes_eval.records import PromptResult, Request, Response, Status

__all__ = ["FIXTURES", "REPO", "SHAPES", "SUITES", "FakeAdapter", "LocalDouble", "prompt_result"]

REPO = Path(__file__).resolve().parents[1]
SUITES = REPO / "suites"
SHAPES = SUITES / "shapes.yaml"
FIXTURES = REPO / "tests" / "fixtures"

HEALTHY_PROJECTOR = {
    "found": True,
    "tensors": 4,
    "parameters": 100,
    "all_zero": False,
    "nonfinite": 0,
    "weight_rms": 0.1,
    "missing": [],
    "text_embedding_norm": 1.0,
    "visual_token_norm": 2.0,
    "norm_ratio": 2.0,
    "between_image_spread": 0.9,
}


class FakeAdapter(Adapter):
    """A scripted model over one suite.

    Args:
        suite: the loaded Suite whose prompts it answers.
        mode: `healthy` (answers and likelihoods follow the image), `blind` (the image changes
            nothing: same answer and likelihood under any image), `gibberish` (non-words, very
            unlikely references), `zero-projector` (blind, and the fingerprint says the projector
            is all zero).
        scoring: whether `score` works (False: like a server, the likelihood probes are skipped).
        crash: an exception that `generate` turns into error Responses for every request.
    """

    loader = "fake"

    def __init__(self, suite, mode: str = "healthy", *, scoring: bool = True, crash: BaseException | None = None):
        self.suite, self.mode, self.crash = suite, mode, crash
        self.supports_scoring = scoring  # an instance may narrow the class's capability
        self.by_image = {p.path: p for p in suite.prompts}
        self.calls: list[tuple[str, int]] = []
        """(method, number of requests) per call, in order."""

    @classmethod
    def open(cls, spec, detection, profile):  # pragma: no cover - built directly by tests
        raise NotImplementedError

    def _sees(self, r: Request) -> bool:
        return self.mode == "healthy" and r.variant != "blank"

    def generate(self, requests: list[Request]) -> list[Response]:
        self.calls.append(("generate", len(requests)))
        out = []
        for r in requests:
            if self.crash is not None:
                out.append(
                    Response(
                        prompt_id=r.prompt_id,
                        variant=r.variant,
                        finish="error",
                        error=one_line(self.crash),
                        error_kind=error_kind(self.crash),
                    )
                )
                continue
            own = next(p for p in self.suite.prompts if p.id == r.prompt_id)
            if self.mode == "gibberish":
                text = "blorf zqxv vvkk qqqt plimb snarf grob"
            elif self._sees(r):
                text = self.by_image[r.image].reference if r.image in self.by_image else "a grey picture"
            elif r.variant == "blank" and self.mode == "healthy":
                text = "a plain grey picture with nothing in it"
            else:  # blind: the question alone decides
                text = own.reference or "something"
            out.append(Response(prompt_id=r.prompt_id, variant=r.variant, text=text, new_tokens=len(text.split())))
        return out

    def score(self, requests: list[Request], targets: list[str]) -> list[float | None]:
        self.calls.append(("score", len(requests)))
        if not self.supports_scoring:
            raise NotImplementedError("scripted without likelihoods")
        out: list[float | None] = []
        for r, t in zip(requests, targets):
            if self.mode == "gibberish":
                out.append(-6.0)
            elif not self._sees(r):
                out.append(-1.0)
            elif r.template is not None:
                out.append(-0.4)
            else:
                shown = self.by_image.get(r.image)
                out.append(-0.1 if shown is not None and shown.reference == t else -2.5)
        return out

    def describe(self, sample_images: list[Path] | None = None) -> dict:
        projector = dict(HEALTHY_PROJECTOR)
        if self.mode == "zero-projector":
            projector.update(
                all_zero=True, weight_rms=0.0, visual_token_norm=0.0, norm_ratio=0.0, between_image_spread=0.0
            )
        return {
            "architecture": "FakeForConditionalGeneration",
            "loader": "fake",
            "profile": "fake",
            "mode": self.mode,
            "template": "checkpoint chat template",
            "dtype": "float32",
            "device": "cpu",
            "projector": projector,
        }


class LocalDouble(Adapter):
    """A minimal local model for `serve`'s plumbing tests: no likelihoods, no templates; subclasses write `generate`."""

    loader = "double"
    supports_scoring = False
    supports_templates = False

    def __init__(self):
        self.checkpoint = Path("/models/echo")

    @classmethod
    def open(cls, spec, detection, profile):  # pragma: no cover - built directly by tests
        raise NotImplementedError

    def score(self, requests, targets):
        raise NotImplementedError("a test double has no likelihoods")

    def describe(self, sample_images=None) -> dict:
        return {"loader": self.loader}


def prompt_result(pid: str, *, status: Status = Status.PASS, answer: str | None = "red", category: str = "vqa",
                  image: Path | str = "/i.png", question: str | None = None, signals=(), **fields) -> PromptResult:
    """A PromptResult built by hand (render, compare and verdict tests): the fields a test cares about, plain defaults."""
    return PromptResult(id=pid, category=category, question=f"Question {pid}?" if question is None else question,
                        image=f"images/{Path(image).name}", image_path=str(image), answer=answer, status=status,
                        signals=list(signals), **fields)
