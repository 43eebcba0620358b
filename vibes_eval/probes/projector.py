"""Loader probes: what the fingerprint says about the projector and the image-token count.

They read the fingerprint only (numbers the Adapter measured at load time), so they are
pure functions. Projector norms depend on the initialisation scale, so they are evidence
for a diagnosis, never a diagnosis by themselves: only missing or all-zero / non-finite
projector tensors are decisive on their own (see judge/verdict.py).
"""

from __future__ import annotations

from vibes_eval.judge import thresholds
from vibes_eval.records import ProbeName, Signal, Status

__all__ = ["COLLAPSE_SPREAD", "probe_adapter_projector", "probe_collapse", "probe_projector_missing", "probe_projector_norm",
           "probe_projector_weights", "run_loader_probes"]

COLLAPSE_SPREAD = thresholds.COLLAPSE_SPREAD.value  # the thresholds live in vibes_eval.judge.thresholds
NORM_RATIO_LOW = thresholds.NORM_RATIO_LOW.value


def probe_projector_missing(fp: dict) -> Signal:
    """Projector tensors absent from the checkpoint (from_pretrained initialized them anew)."""
    proj = fp.get("projector") or {}
    if not proj.get("found", False):
        return Signal(probe=ProbeName.PROJECTOR_MISSING, status=Status.SKIP, reason="The model has no projector module to check.")
    missing = proj.get("missing") or []
    if missing:
        return Signal(probe=ProbeName.PROJECTOR_MISSING, status=Status.FAIL, score=0.0, evidence={"missing": missing},
                      reason=f"{len(missing)} projector tensors are missing from the checkpoint and were newly initialized "
                             f"({missing[0]}, ...): the projector was never saved or saved under other names.")
    return Signal(probe=ProbeName.PROJECTOR_MISSING, status=Status.PASS, score=1.0,
                  reason="Every projector tensor was loaded from the checkpoint.")


def probe_adapter_projector(fp: dict) -> list[Signal]:
    """A PEFT adapter that saved no projector tensors: the projector is its base's (no signal for a checkpoint that is no adapter).

    Not a failure by itself (a LoRA over a trained LLaVA leaves the projector alone); when the model
    does not see, it is the classic mistake of a LoRA run that trained the projector without listing
    it in modules_to_save, and the verdict says so.
    """
    peft = fp.get("peft")
    if not peft:
        return []
    ev = {"modules_to_save": peft.get("modules_to_save")}
    if peft.get("projector_saved"):
        return [Signal(probe=ProbeName.ADAPTER_PROJECTOR, status=Status.PASS, score=1.0, evidence=ev,
                       reason="The adapter holds the projector it trained (modules_to_save).")]
    return [Signal(probe=ProbeName.ADAPTER_PROJECTOR, status=Status.WARN, score=0.5, evidence=ev,
                   reason=f"The adapter holds no projector tensors (modules_to_save: {peft.get('modules_to_save')}): the "
                          f"projector is the base's ({peft.get('base')}); a LoRA run that trained it never saved it (list "
                          "multi_modal_projector in modules_to_save).")]


def probe_projector_weights(fp: dict) -> Signal:
    """Projector weights all zero, or with NaN/Inf."""
    proj = fp.get("projector") or {}
    if not proj.get("found", False):
        return Signal(probe=ProbeName.PROJECTOR_WEIGHTS, status=Status.SKIP, reason="The model has no projector module to check.")
    ev = {k: proj.get(k) for k in ("all_zero", "nonfinite", "weight_rms", "parameters")}
    if proj.get("nonfinite"):
        return Signal(probe=ProbeName.PROJECTOR_WEIGHTS, status=Status.FAIL, score=0.0, evidence=ev,
                      reason=f"{proj['nonfinite']} projector weights are NaN or Inf: the save or a training step overflowed.")
    if proj.get("all_zero"):
        return Signal(probe=ProbeName.PROJECTOR_WEIGHTS, status=Status.FAIL, score=0.0, evidence=ev,
                      reason="Every projector weight is zero: the image reaches the LLM as nothing.")
    return Signal(
        probe=ProbeName.PROJECTOR_WEIGHTS, status=Status.PASS, score=1.0, evidence=ev, reason="Projector weights are finite and non-zero."
    )


def probe_projector_norm(fp: dict) -> Signal:
    """Projected visual tokens far smaller than the LLM's text embeddings."""
    proj = fp.get("projector") or {}
    ratio = proj.get("norm_ratio")
    if ratio is None:
        return Signal(probe=ProbeName.PROJECTOR_NORM, status=Status.SKIP, reason="Visual-token norms were not measured.")
    ev = {"visual_token_norm": proj.get("visual_token_norm"), "text_embedding_norm": proj.get("text_embedding_norm"), "norm_ratio": ratio}
    if ratio < NORM_RATIO_LOW:
        return Signal(probe=ProbeName.PROJECTOR_NORM, status=Status.FAIL, score=0.0, evidence=ev,
                      reason=f"Visual tokens have {ratio:.3f}x the norm of text embeddings: the projector output is next to nothing.")
    return Signal(probe=ProbeName.PROJECTOR_NORM, status=Status.PASS, score=1.0, evidence=ev,
                  reason=f"Visual tokens have {ratio:.2f}x the norm of text embeddings.")


def probe_collapse(fp: dict) -> Signal:
    """Projected tokens nearly identical across different images."""
    proj = fp.get("projector") or {}
    spread = proj.get("between_image_spread")
    if spread is None:
        return Signal(probe=ProbeName.COLLAPSE, status=Status.SKIP, reason="Visual tokens were not compared across images.")
    ev = {"between_image_spread": spread, "threshold": COLLAPSE_SPREAD}
    if spread < COLLAPSE_SPREAD:
        return Signal(probe=ProbeName.COLLAPSE, status=Status.FAIL, score=0.0, evidence=ev,
                      reason="The projected visual tokens are the same for different images: the image carries no information.")
    return Signal(probe=ProbeName.COLLAPSE, status=Status.PASS, score=1.0, evidence=ev,
                  reason="Projected visual tokens differ between images.")


def run_loader_probes(fp: dict) -> list[Signal]:
    """Every loader probe on the fingerprint `fp`."""
    return [p(fp) for p in (probe_projector_missing, probe_projector_weights, probe_projector_norm, probe_collapse)]
