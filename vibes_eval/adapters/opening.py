"""`open_adapter(spec)`: the one way every caller gets an Adapter.

    from vibes_eval.adapters.base import AdapterSpec
    from vibes_eval.adapters.opening import open_adapter

    adapter = open_adapter(AdapterSpec(checkpoint=Path("ckpt/"), template="vicuna_v1"))

Detection reads the checkpoint folder once (`adapters.detect.detect_checkpoint`: profile,
parsed config.json), the registry (`adapters.registry.LOADERS`) names the Adapter class the
profile's `loader:` refers to, the class checks the options it was given and opens the model.
The interface itself is `vibes_eval.adapters.base.Adapter`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import vibes_eval.interrupt as interrupt
from vibes_eval.adapters.base import Adapter, AdapterSpec
from vibes_eval.adapters.detect import detect_checkpoint, resolve_profile
from vibes_eval.adapters.registry import loader_class
from vibes_eval.errors import CheckpointError, UsageError, VibesError

__all__ = ["Plan", "open_adapter", "plan_adapter"]

class Plan:
    """What `open_adapter` will do: the profile, the checkpoint's detection, the loader class."""

    def __init__(self, spec: AdapterSpec):
        self.spec = spec
        self.detection = None
        if spec.template:  # a usage error is reported before anything about the checkpoint
            from vibes_eval.adapters.templates import TEMPLATES

            if spec.template not in TEMPLATES:
                raise UsageError(f"--template: unknown template {spec.template!r}; known: {', '.join(TEMPLATES)}")
        if spec.checkpoint is None:  # a server: the profile must be named (or be the openai default)
            self.profile = resolve_profile(spec.adapter or "openai")
        else:
            self.detection = detect_checkpoint(Path(spec.checkpoint), spec.adapter, spec.base, trust_remote_code=spec.trust_remote_code)
            self.profile = self.detection.profile
        self.cls = loader_class(self.profile.loader)
        if self.cls.needs_checkpoint and spec.checkpoint is None:
            raise UsageError(f"--adapter {self.profile.name}: needs a checkpoint folder (CKPT)")
        self.cls.check_spec(spec, self.detection)

    @property
    def message(self) -> str:
        """What a spinner says while the adapter opens."""
        return self.cls.opening_message(self.spec, self.profile)

    def open(self) -> Adapter:
        """Open the adapter; whatever else a loader raises becomes one CheckpointError line (exit 3)."""
        import warnings

        try:
            with warnings.catch_warnings():  # torch's and transformers' loading warnings: a failure says what matters
                warnings.simplefilter("ignore")
                return self.cls.open(self.spec, self.detection, self.profile)
        except VibesError:
            interrupt.raise_if_stopped()
            raise
        except Exception as e:  # noqa: BLE001 - a loader bug or a library's own error: one line, never a traceback
            # a Ctrl-C a library swallowed (torch's NumPy import) fails the load its own odd way: it is an interrupt
            interrupt.raise_if_stopped()
            from vibes_eval.adapters.failures import load_failure  # names a missing package, else the first line

            raise CheckpointError(load_failure(self.spec.label, e)) from e


def plan_adapter(spec: AdapterSpec) -> Plan:
    """Detect and check everything about `spec` without loading weights.

    Raises:
        UsageError: an unknown profile, loader or template, or options the loader refuses (exit 2).
        CheckpointError: the folder is not a checkpoint vibes-eval can read (exit 3).
    """
    return Plan(spec)


def open_adapter(spec: AdapterSpec, *, loading: Callable[[str], AbstractContextManager] | None = None) -> Adapter:
    """Detect the checkpoint (or take the named profile), check the options, open the Adapter.

    Args:
        spec: what to open (a checkpoint folder or a server) and the loader options.
        loading: optional `message -> context manager` shown while weights load (e.g. a Rich
            console's `status`).

    Raises:
        UsageError: an unknown profile, loader or template, or options the loader refuses (exit 2).
        CheckpointError: the checkpoint cannot be evaluated (exit 3); RemoteError likewise for a server.
    """
    plan = plan_adapter(spec)
    with (loading or (lambda message: nullcontext()))(plan.message):
        return plan.open()
