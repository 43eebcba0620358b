"""RunOptions: everything a run of the suite on one checkpoint may be told, typed, in one frozen record.

Built once, at the edge: from the command line (`RunOptions.from_args`, the one place that reads
an argparse Namespace), by the `vibes` pytest fixture, by `watch` and the Trainer callback, or by a
caller of `vibes_eval.evaluate(ckpt, options)`. Past that edge nothing reads a Namespace, and sweep
worker processes receive this record (it pickles: paths, strings and numbers only).

    from vibes_eval import RunOptions, evaluate

    sc = evaluate("ckpt/", options=RunOptions(device="cpu", grounding=False))
    sc = evaluate("ckpt/", baseline="reports/last-release/")      # a field given by name works too
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["DTYPES", "LOADER_FIELDS", "QUANTIZE", "RunOptions"]

QUANTIZE = ("4bit", "8bit")
"""What `--quantize` takes: bitsandbytes 4-bit NF4 (bf16 compute) or 8-bit (LLM.int8)."""

DTYPES = ("float32", "bfloat16", "float16")
"""The dtypes a checkpoint can be loaded in (`--dtype`)."""

LOADER_FIELDS = ("adapter", "device", "dtype", "template", "batch_size", "base", "vision_tower", "base_url", "model",
                 "concurrency", "timeout", "prefix_cache", "trust_remote_code", "quantize")
"""The fields that go into the AdapterSpec (how to open the checkpoint or reach the server)."""


@dataclass(frozen=True)
class RunOptions:
    """What to ask, how to open the model, how to judge, where the results go; defaults are `vibes-eval run`'s."""

    # what to ask and how to judge
    suite: Path | None = None
    """A suite YAML or a bundled suite's name; None: the bundled default (shapes for a toy)."""
    grounding: bool = True
    """Ask the blank and swapped-image variants and score the references (`--no-grounding` turns it off)."""
    templates: bool = True
    """Also score the references after every known template's answer cue (template fit)."""
    max_fail: int | None = None
    max_warn: int | None = None
    baseline: Path | None = None
    """An earlier report folder or scorecard.json: a lost prompt or a fallen signal fails the gate (regression)."""
    baseline_any_suite: bool = False
    baseline_card: Any = None
    """The baseline already loaded, (Scorecard, file): a command or callback reads it once and every checkpoint
    it judges is compared with that same report (not re-read, so a report the sweep writes cannot become it)."""
    # how to open the checkpoint (AdapterSpec fields)
    adapter: str | None = None
    device: str | None = None
    dtype: str | None = None
    template: str | None = None
    batch_size: int | None = None
    base: Path | None = None
    vision_tower: Path | None = None
    base_url: str | None = None
    model: str | None = None
    concurrency: int | None = None
    timeout: float | None = None
    prefix_cache: bool = True
    """Share image prefixes across requests (HF loaders); False: every request encodes its image again."""
    trust_remote_code: bool = False
    quantize: str | None = None
    """`4bit` or `8bit`: quantize a bf16/fp32 checkpoint on load with bitsandbytes (`--quantize`; a CUDA GPU only)."""
    """Run the checkpoint folder's own modeling code (auto_map; never downloaded): `--trust-remote-code`."""
    # where the results go
    out: Path | None = None
    junit: Path | None = None
    summary_md: Path | None = None
    quiet: bool = False
    report_to: tuple[str, ...] = ()
    """Trackers that get each checkpoint's answers, thumbnails, scorecard and signals (`--report-to wandb,mlflow,tensorboard`)."""
    run_id: str | None = None
    """One id in every file one command writes (a sweep's checkpoints share it)."""
    # several checkpoints
    devices: str | None = None
    shard: str | None = None
    prefetch: bool = True

    def __post_init__(self) -> None:
        """Values as the flags would have parsed them (`batch_size="4"` is 4), or one UsageError naming the option."""
        from vibes_eval.errors import UsageError

        for name, kind in _TYPES.items():
            value = getattr(self, name)
            if value is None or isinstance(value, kind) and not isinstance(value, bool):
                continue
            try:
                if isinstance(value, bool) or (kind is not Path and not isinstance(value, (str, int, float))):
                    raise TypeError
                object.__setattr__(self, name, kind(value))
            except (TypeError, ValueError):
                raise UsageError(f"{name}: expected {_WORDS[kind]}, got {value!r}") from None
        if self.quantize is not None and self.quantize not in QUANTIZE:
            raise UsageError(f"quantize: {self.quantize!r} is not one of {', '.join(QUANTIZE)}")
        if self.dtype is not None and self.dtype not in DTYPES:
            raise UsageError(f"dtype: {self.dtype!r} is not one of {', '.join(DTYPES)}")
        for name in ("batch_size", "concurrency"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UsageError(f"{name}: must be at least 1, got {getattr(self, name)}")

    def replace(self, **changes: Any) -> RunOptions:
        """A copy with `changes`; a TypeError names a field that does not exist."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"RunOptions: unknown option {unknown[0]!r}; known: {', '.join(f.name for f in dataclasses.fields(self))}")
        return dataclasses.replace(self, **changes)

    def spec(self, checkpoint: Path | None, **extra: Any):
        """The AdapterSpec to open `checkpoint` (None: the server) with these options."""
        from vibes_eval.adapters.base import AdapterSpec

        return AdapterSpec(checkpoint=None if checkpoint is None else Path(checkpoint),
                           **{k: getattr(self, k) for k in LOADER_FIELDS}, **extra)

    @property
    def remote(self) -> bool:
        """The model is behind a server (`--adapter openai|sglang` or `--base-url`)."""
        return self.adapter in ("openai", "sglang") or self.base_url is not None

    @classmethod
    def from_args(cls, args) -> RunOptions:
        """The options of a parsed `run` or `watch` command line (flags a command lacks keep their defaults)."""
        ns = vars(args)
        values = {f.name: ns[f.name] for f in dataclasses.fields(cls) if f.name in ns}
        if "no_grounding" in ns:
            values["grounding"] = not ns["no_grounding"]
        if "no_prefetch" in ns:
            values["prefetch"] = not ns["no_prefetch"]
        return cls(**values)


_TYPES = {"max_fail": int, "max_warn": int, "batch_size": int, "concurrency": int, "timeout": float, "suite": Path,
          "baseline": Path, "base": Path, "vision_tower": Path, "out": Path, "junit": Path, "summary_md": Path}
_WORDS = {int: "a whole number", float: "a number", Path: "a path"}
