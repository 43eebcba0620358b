"""Original LLaVA weights: reading the files, and their key names mapped to transformers' modules.

`read_weights` reads safetensors and pickles (torch.load with weights_only=True: a checkpoint is
data). `to_hf` maps the original names (`model.*`, `lm_head`, `model.mm_projector.{0,2}`,
`model.vision_tower.vision_tower.*`, `model.image_newline`) to the names this transformers' Llava
classes expect, keeping the original name of each for the missing/unexpected-key reports.
"""

from __future__ import annotations

import json
from pathlib import Path

from vibes_eval.errors import CheckpointError

__all__ = ["PROJECTOR_SLOTS", "grow_input_embeddings", "is_llm_key", "original_name", "read_weights", "shards", "to_hf"]

PROJECTOR_SLOTS = {"0": "linear_1", "2": "linear_2"}  # nn.Sequential(Linear, GELU, Linear)


def shards(folder: Path) -> list[Path]:
    """The LLM weight files of `folder` (an index's shards, else model*.safetensors, else pytorch_model*.bin)."""
    for index, pattern in (("model.safetensors.index.json", "model*.safetensors"), ("pytorch_model.bin.index.json", "pytorch_model*.bin")):
        idx = folder / index
        if idx.is_file():
            try:
                names = sorted(set(json.loads(idx.read_text())["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError) as e:
                raise CheckpointError(f"{idx}: cannot read the shard index: {type(e).__name__}: {e}") from None
            missing = [n for n in names if not (folder / n).is_file()]
            if missing:
                raise CheckpointError(f"{idx}: weight_map names {missing[0]}, which is not in the folder")
            return [folder / n for n in names]
        files = sorted(folder.glob(pattern))
        if files:
            return files
    return []


def read_weights(files: list[Path]) -> dict:
    """Every tensor of `files` (safetensors, or pickles read with torch.load(weights_only=True)).

    Raises:
        CheckpointError: a file is unreadable, or a pickle holds anything but tensors (one line).
    """
    import pickle

    import torch
    from safetensors.torch import load_file

    out = {}
    for f in files:
        if f.suffix == ".safetensors":
            try:
                out.update(load_file(str(f)))
            except Exception as e:  # safetensors raises its own error types for every malformed header
                raise CheckpointError(f"{f}: cannot read weights: {str(e).splitlines()[0] if str(e) else type(e).__name__}") from None
            continue
        try:
            # weights_only: a checkpoint is data; a pickle that wants to build objects may run code
            data = torch.load(f, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            raise CheckpointError(
                f"{f}: refused: the pickle holds objects other than tensors (torch.load weights_only=True: "
                f"{str(e).strip().splitlines()[0]})"
            ) from None
        except (OSError, RuntimeError, EOFError, ValueError) as e:
            raise CheckpointError(f"{f}: cannot read weights: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None
        if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
            raise CheckpointError(f"{f}: expected a dict of tensor names to tensors, found {type(data).__name__}")
        out.update(data)
    return out


def is_llm_key(key: str) -> bool:
    return (key.startswith("model.") or key.startswith("lm_head.")) and not key.startswith(
        ("model.mm_projector.", "model.vision_tower.", "model.image_newline", "model.vision_resampler.")
    )


def to_hf(state: dict, ptype: str, tower, text_hidden: int, vision_hidden: int) -> tuple[dict, dict]:
    """Original names -> this transformers' module names; also {hf name: original name}.

    DESIGN.md gives the mapping to the hub-era HF layout; we map straight to the names the model
    itself expects (5.x: `model.language_model.*`, tower keys without `vision_model.`), so the
    missing and unexpected keys are computed in one naming.
    """
    import torch

    out, origin = {}, {}

    def put(hf: str, orig: str, value) -> None:
        out[hf], origin[hf] = value, orig

    tower_keys = set(tower.state_dict())
    in_ckpt = {}
    for key, value in state.items():
        if key.startswith("model.vision_tower.vision_tower."):  # a fresh training save keeps the tower
            rest = key[len("model.vision_tower.vision_tower.") :]
            in_ckpt[rest if rest in tower_keys else rest.removeprefix("vision_model.")] = (key, value)
        elif key.startswith("model.mm_projector."):
            rest = key[len("model.mm_projector.") :]
            if ptype == "mlp2x_gelu":
                slot, _, param = rest.partition(".")
                put(f"model.multi_modal_projector.{PROJECTOR_SLOTS.get(slot, slot)}.{param}", key, value)
            else:
                put(f"model.multi_modal_projector.linear_1.{rest}", key, value)
        elif key == "model.image_newline":
            put("model.image_newline", key, value)
        elif key.startswith("lm_head."):
            put(key, key, value)
        elif key.startswith("model."):
            put("model.language_model." + key[len("model.") :], key, value)
        else:
            put(key, key, value)  # unknown: reported as unexpected
    # the tower: its own folder's weights, unless the checkpoint carries (fine-tuned) ones
    for key, value in tower.state_dict().items():
        orig, value = in_ckpt.pop(key, (f"vision_tower/{key}", value))
        put(f"model.vision_tower.{key}", orig, value)
    for key, (orig, value) in in_ckpt.items():
        put(f"model.vision_tower.{key}", orig, value)
    # linear / identity projectors are one Linear (or none); transformers' has two, the rest identity
    if ptype in ("linear", "identity"):
        put("model.multi_modal_projector.linear_2.weight", "(identity)", torch.eye(text_hidden))
        put("model.multi_modal_projector.linear_2.bias", "(identity)", torch.zeros(text_hidden))
    if ptype == "identity":
        put("model.multi_modal_projector.linear_1.weight", "(identity)", torch.eye(text_hidden, vision_hidden))
        put("model.multi_modal_projector.linear_1.bias", "(identity)", torch.zeros(text_hidden))
    return out, origin


def original_name(hf_key: str, ptype: str) -> str:
    """The original checkpoint's name for a tensor transformers expects (for missing-key reports)."""
    if hf_key.startswith("model.multi_modal_projector."):
        layer, _, param = hf_key[len("model.multi_modal_projector.") :].partition(".")
        if ptype != "mlp2x_gelu":
            return f"model.mm_projector.{param}"
        slot = {v: k for k, v in PROJECTOR_SLOTS.items()}.get(layer, layer)
        return f"model.mm_projector.{slot}.{param}"
    if hf_key.startswith("model.language_model."):
        return "model." + hf_key[len("model.language_model.") :]
    if hf_key.startswith("model.vision_tower."):
        return "vision_tower/" + hf_key[len("model.vision_tower.") :]
    return hf_key


def grow_input_embeddings(model, rows: int) -> None:
    """Add input-embedding rows for the added <image> token; the output head keeps its size.

    The rows are never read (image features replace them), and leaving lm_head alone keeps the
    logits, so the likelihoods, exactly the original's: the model can never emit <image>.
    """
    import torch

    old = model.get_input_embeddings()
    new = torch.nn.Embedding(rows, old.embedding_dim, padding_idx=old.padding_idx, dtype=old.weight.dtype, device=old.weight.device)
    with torch.no_grad():
        new.weight[: old.num_embeddings] = old.weight
        new.weight[old.num_embeddings :] = old.weight.mean(0)
    model.set_input_embeddings(new)
