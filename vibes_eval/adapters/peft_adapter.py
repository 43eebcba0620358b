"""PEFT adapters (LoRA, QLoRA, DoRA; `modules_to_save`) of a transformers-native LLaVA-family model.

A `PeftModel.save_pretrained` folder (and every TRL / Trainer `checkpoint-N` of a LoRA run) holds
`adapter_config.json` + `adapter_model.safetensors` and no config.json. The base comes from
`base_model_name_or_path` when that is a local folder, else from `--base DIR`; nothing is
downloaded, so a hub id without `--base` is one line naming it. The adapter is merged into the base
in memory (adapters/peft_merge.py). This module finds the adapter and its base (detection reads it;
it imports nothing of torch or peft at import time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from vibes_eval.adapters.sanity import read_json_object
from vibes_eval.errors import CheckpointError

__all__ = ["LEGACY_KEYS", "PeftAdapter", "find_adapter", "resolve_base"]

ADAPTER_CONFIG = "adapter_config.json"
_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

LEGACY_KEYS = {
    # adapters saved with transformers < 4.52 name the LLaVA parts without the `model.` level
    # (the renames transformers' own conversion_mapping applies to full checkpoints); first match wins
    r"^language_model\.lm_head\.": "lm_head.",
    r"^language_model\.model\.": "model.language_model.",
    r"^vision_tower\.": "model.vision_tower.",
    r"^image_tower\.": "model.image_tower.",
    r"^video_tower\.": "model.video_tower.",
    r"^multi_modal_projector\.": "model.multi_modal_projector.",
    r"^image_newline$": "model.image_newline",
}


@dataclass(frozen=True)
class PeftAdapter:
    """An adapter folder, its adapter_config.json, the base it applies to and its tensor names."""

    folder: Path
    config: dict
    base: Path
    weights: Path
    keys: tuple[str, ...]

    @property
    def projector_saved(self) -> bool:
        """The adapter file holds projector tensors (modules_to_save lists it, or its LoRA targets it)."""
        return any("multi_modal_projector" in k for k in self.keys)

    def processor_dir(self) -> Path:
        """Where the processor is read: the adapter folder when the run saved one there (a Trainer's processing_class), else the base."""
        if any((self.folder / n).is_file() for n in ("processor_config.json", "tokenizer_config.json")):
            return self.folder
        return self.base

    def describe(self) -> dict:
        """The fingerprint's `peft` block (the weight hashes are added by the loader)."""
        c = self.config
        return {"adapter": str(self.folder), "base": str(self.base), "peft_type": c.get("peft_type"),
                "r": c.get("r"), "lora_alpha": c.get("lora_alpha"), "target_modules": c.get("target_modules"),
                "modules_to_save": c.get("modules_to_save"), "use_dora": c.get("use_dora"),
                "projector_saved": self.projector_saved, "tensors": len(self.keys), "merged": True}


def _keys(path: Path) -> tuple[str, ...]:
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as h:
                return tuple(h.keys())
        except Exception as e:  # safetensors raises its own error types for every malformed header
            raise CheckpointError(f"{path}: cannot read weights: {str(e).splitlines()[0]}") from None
    import torch

    try:
        sd = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    except Exception as e:  # a truncated or foreign pickle  # noqa: BLE001
        raise CheckpointError(f"{path}: cannot read weights: {str(e).splitlines()[0][:200]}") from None
    return tuple(sd) if isinstance(sd, dict) else ()


def resolve_base(folder: Path, config: dict, base: str | Path | None) -> Path:
    """The base model folder: `base` (--base) when given, else base_model_name_or_path when it is a local folder.

    A relative base_model_name_or_path is tried as given (from the current folder, as the
    training script saw it) and then against the adapter folder.
    """
    where = folder / ADAPTER_CONFIG
    if base is not None:
        path = Path(base)
        if not (path / "config.json").is_file():
            raise CheckpointError(f"--base {path}: not a model folder (no config.json)")
        return path
    named = config.get("base_model_name_or_path")
    if not isinstance(named, str) or not named.strip():
        raise CheckpointError(f"{where}: base_model_name_or_path: missing; pass --base DIR (the model the adapter was trained on)")
    for cand in (Path(named), folder / named):
        if (cand / "config.json").is_file():
            return cand
    if _HUB_ID.match(named) and not Path(named).exists():
        raise CheckpointError(
            f"{where}: base_model_name_or_path {named!r} is a hub id and vibes-eval downloads nothing; "
            f"pass --base DIR (a local copy of {named})"
        )
    raise CheckpointError(f"{where}: base_model_name_or_path {named!r}: no model folder there; pass --base DIR")


def find_adapter(folder: Path, base: str | Path | None = None) -> PeftAdapter | None:
    """The PEFT adapter in `folder`, its base resolved; None when `folder` has no adapter_config.json."""
    folder = Path(folder)
    cfg_path = folder / ADAPTER_CONFIG
    if not cfg_path.is_file():
        return None
    config = read_json_object(cfg_path, "an adapter config")
    if not isinstance(config.get("peft_type"), str):
        raise CheckpointError(f"{cfg_path}: peft_type: missing (not a PEFT adapter config)")
    weights = next((folder / n for n in _WEIGHTS if (folder / n).is_file()), None)
    if weights is None:
        raise CheckpointError(f"{folder}: adapter_config.json without adapter_model.safetensors or adapter_model.bin")
    return PeftAdapter(folder, config, resolve_base(folder, config, base), weights, _keys(weights))
