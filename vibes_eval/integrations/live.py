"""Evaluate a model that is in memory (a training run's live model): no reload, no second copy.

`evaluate_live(model, processor, suite)` wraps the very model object the trainer holds in an
Adapter (`LiveAdapter`, the HF loader's code adopting a model + processor pair), runs the suite
under `torch.inference_mode()` with the model in eval mode, and puts everything back as it was:
train mode, the tokenizer's padding side and pad token, the RNG states (a check must not change
what training does next). A PEFT model is evaluated with its adapters applied (its base model
object, LoRA layers and all).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from vibes_eval.adapters.hf.model import HFAdapter

__all__ = ["LiveAdapter", "evaluate_live", "live_state", "unwrap"]


def unwrap(model):
    """The LLaVA model object inside DDP/DeepSpeed wrappers and a PEFT model (the same object, never a copy)."""
    seen = 0
    while hasattr(model, "module") and seen < 8:  # DistributedDataParallel, DeepSpeedEngine
        model, seen = model.module, seen + 1
    if hasattr(model, "get_base_model"):  # peft: the base model with the LoRA layers in it
        model = model.get_base_model()
    return model


def _profile_for(model):
    from vibes_eval.adapters.detect import profiles

    arch = (getattr(model.config, "architectures", None) or [type(model).__name__])[0]
    for p in profiles().values():
        if arch in p.architectures or type(model).__name__ in p.architectures:
            return p
    raise ValueError(f"VibesCallback: {type(model).__name__} ({arch}) is not a LLaVA-family model vibes-eval can evaluate")


class LiveAdapter(HFAdapter):
    """The HF loader around a model and processor already in memory (nothing is loaded or copied)."""

    def __init__(self, model, processor, *, template: str | None = None, batch_size: int | None = None, label: str = "live model"):
        import torch

        self.checkpoint = None  # no folder: no file is hashed or read
        self.label = label
        self.profile = _profile_for(model)
        self.batch_size = batch_size
        param = next(model.parameters())
        dtype = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(param.dtype, str(param.dtype))
        self._setup(model, processor, {}, device=str(param.device), dtype=dtype, template=template)

    def describe(self, sample_images: list[Path] | None = None) -> dict:
        """The HF fingerprint, with a parameter summary in place of file hashes (there are no files)."""
        fp = super().describe(sample_images)
        fp["loader"] = "live"
        fp["weights"] = {"in_memory": _param_summary(self.model)}
        fp["visual_token_budget"] = "not computed for an in-memory model"
        return fp


def _param_summary(model) -> str:
    """Parameter count and the global L2 norm: two trained steps differ here (cheap: one pass, no copy)."""
    import torch

    with torch.no_grad():
        sq = sum(float(p.detach().float().pow(2).sum()) for p in model.parameters())
        n = sum(p.numel() for p in model.parameters())
    return f"{n} parameters, norm {sq ** 0.5:.6g}"


@contextlib.contextmanager
def live_state(model, processor):
    """Eval mode, inference mode, the tokenizer and RNG states restored on exit (also on error)."""
    import torch

    tok = getattr(processor, "tokenizer", processor)
    side, pad = tok.padding_side, tok.pad_token
    was_training = model.training
    cpu_rng = torch.get_rng_state()
    cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else None
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)
        tok.padding_side = side
        if tok.pad_token != pad:
            tok.pad_token = pad
        torch.set_rng_state(cpu_rng)
        if cuda_rng is not None:
            torch.cuda.set_rng_state_all(cuda_rng)


def evaluate_live(model, processor, suite, *, label: str = "live model", options=None):
    """Run `suite` on the in-memory `model`; return (Scorecard, the adapter's model object, seconds).

    `options` (a RunOptions): its template and batch_size shape the adapter, the rest (grounding,
    baseline, gate) goes to `evaluate` as for any checkpoint. The second value is there so callers
    (and tests) can see it is the object they passed in.
    """
    from vibes_eval.options import RunOptions

    options = options or RunOptions()
    template, batch_size = options.template, options.batch_size
    target = unwrap(model)
    t0 = time.perf_counter()
    from vibes_eval.api import evaluate

    with live_state(target, processor):
        adapter = LiveAdapter(target, processor, template=template, batch_size=batch_size, label=label)
        try:
            sc = evaluate(adapter, suite, options.replace(template=None, batch_size=None), label=label)
        finally:
            used = adapter.model
            adapter.close()  # the KV caches and image features go now, not at the next check
            del adapter
    return sc, used, time.perf_counter() - t0
