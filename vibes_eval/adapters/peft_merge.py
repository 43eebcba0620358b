"""Merging a PEFT adapter (adapters.peft_adapter.PeftAdapter) into its loaded base, and its fingerprint hashes.

Every adapter tensor must land on a module of the base: an adapter saved by transformers 4.x under
the old `language_model.model.*` names is renamed first (LEGACY_KEYS), and whatever still fits no
module is named in one line, never dropped with a warning (peft's own behaviour).
"""

from __future__ import annotations

import contextlib
import warnings

from vibes_eval.adapters.peft_adapter import LEGACY_KEYS, PeftAdapter
from vibes_eval.errors import CheckpointError

__all__ = ["adapter_hashes", "apply_adapter", "peft_quiet"]


@contextlib.contextmanager
def peft_quiet():
    """Silence the one deprecation peft 0.21 trips over in transformers 5.x."""
    with warnings.catch_warnings():
        # peft reads model.is_gradient_checkpointing, deprecated in transformers 5 (a FutureWarning)
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        yield


def adapter_hashes(adapter: PeftAdapter) -> dict[str, str]:
    """sha256 of the base's weight files and the adapter's, each named by its folder (`base/...`, `adapter/...`)."""
    from vibes_eval.adapters.weight_files import hash_files, hash_weights

    base = {f"base/{k}": v for k, v in hash_weights(adapter.base).items()}
    return {**base, **{f"adapter/{k}": v for k, v in hash_files([adapter.weights]).items()}}


def _adapter_key(name: str) -> bool:
    """A parameter name that belongs to the adapter (not the frozen base)."""
    return ".default." in name or name.endswith(".default")


def apply_adapter(model, adapter: PeftAdapter):
    """`model` with the adapter merged in (a plain transformers model again); CheckpointError if it does not fit."""
    try:
        from peft import PeftConfig, PeftModel
    except ImportError:
        raise CheckpointError(f"{adapter.folder}: a PEFT adapter needs the `peft` package (pip install peft)") from None
    mapping = {**LEGACY_KEYS, **(getattr(model, "_checkpoint_conversion_mapping", None) or {})}
    try:
        config = PeftConfig.from_pretrained(str(adapter.folder))
        config.inference_mode = True
        with peft_quiet():
            pm = PeftModel(model, config)
            result = pm.load_adapter(str(adapter.folder), adapter_name="default", is_trainable=False, key_mapping=mapping)
    except (ValueError, KeyError, RuntimeError, TypeError, OSError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{adapter.weights}: does not fit the base {adapter.base}: {type(e).__name__}: {first}") from None
    unplaced = list(getattr(result, "unexpected_keys", []) or [])
    unloaded = [k for k in getattr(result, "missing_keys", []) or [] if _adapter_key(k)]
    if unplaced or unloaded:
        what = f"{len(unplaced)} tensors match no module of the base ({unplaced[0]})" if unplaced else (
            f"{len(unloaded)} adapter parameters got no tensor ({unloaded[0]})")
        raise CheckpointError(f"{adapter.weights}: {what}; is {adapter.base} the model it was trained on?")
    with peft_quiet():
        return pm.merge_and_unload()
