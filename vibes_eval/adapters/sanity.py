"""A checkpoint's config.json, read (`read_config`) and its sizes checked before anything is allocated.

transformers builds every layer a config asks for before it reads a single weight: a config
saying `num_hidden_layers: 1000000` (or a hidden size of 10^7) would allocate for minutes until
memory runs out, with nothing printed. `check_sizes(config, file)` walks the whole config
(text_config, vision_config, the top level of the original LLaVA format) and raises
CheckpointError with one line `config.json: text_config.num_hidden_layers: 1000000 is more than
512` for the first size no real checkpoint has, or that is not a positive integer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vibes_eval.errors import CheckpointError

__all__ = ["LIMITS", "MAX_PARAMETERS", "check_sizes", "context_length", "read_config", "read_json_object"]

LIMITS: dict[str, int] = {
    "num_hidden_layers": 512,  # the largest public models have ~130
    "num_layers": 512,
    "n_layer": 512,
    "hidden_size": 65_536,  # ~25k at most in public models
    "d_model": 65_536,
    "n_embd": 65_536,
    "intermediate_size": 524_288,
    "num_attention_heads": 1_024,
    "num_key_value_heads": 1_024,
    "head_dim": 4_096,
    "vocab_size": 4_194_304,  # ~260k at most in public models
    "max_position_embeddings": 1 << 24,  # rotary models claim up to ~10M; nothing is allocated per position there
    "image_size": 16_384,
    "patch_size": 16_384,
    "mm_hidden_size": 65_536,
    "projection_dim": 65_536,
    "num_channels": 64,
}
"""Most a config may say for each size (any nesting level)."""
MAX_PARAMETERS = 2 * 10**12
"""A rough parameter count above this (a 2 T model) is refused too: each size may be plausible, their product not."""
MAX_POSITIONS_PER_IMAGE = 1 << 16
"""(image_size / patch_size)^2: position embeddings are allocated per patch."""


def check_sizes(config: dict, file: str | Path = "config.json") -> None:
    """Raise CheckpointError (one line naming the field) for a size no checkpoint has; else return."""
    problem = _walk(config, "")
    if problem:
        raise CheckpointError(f"{file}: {problem}")


def _walk(cfg: Any, prefix: str, depth: int = 0) -> str | None:
    if not isinstance(cfg, dict) or depth > 8:
        return None
    for key, value in cfg.items():
        field = f"{prefix}{key}"
        if key in LIMITS and value is not None:
            least = 0 if "layer" in key else 1
            for v in value if isinstance(value, (list, tuple)) and len(value) <= 4 else [value]:  # image_size: [336, 336]
                if not isinstance(v, int) or isinstance(v, bool) or v < least:
                    return f"{field}: {str(value)[:40]} is not a {'non-negative' if least == 0 else 'positive'} integer"
                if v > LIMITS[key]:
                    return f"{field}: {v} is more than {LIMITS[key]:,} (no real checkpoint is that large)"
        elif isinstance(value, dict):
            problem = _walk(value, field + ".", depth + 1)
            if problem:
                return problem
    image, patch = cfg.get("image_size"), cfg.get("patch_size")
    if isinstance(image, int) and isinstance(patch, int) and patch > 0 and (image // patch) ** 2 > MAX_POSITIONS_PER_IMAGE:
        patches = (image // patch) ** 2
        return f"{prefix}image_size: {image} with patch_size {patch} is {patches:,} patches per image (at most {MAX_POSITIONS_PER_IMAGE:,})"
    layers, hidden = cfg.get("num_hidden_layers"), cfg.get("hidden_size")
    if isinstance(layers, int) and isinstance(hidden, int):
        inner = cfg.get("intermediate_size") if isinstance(cfg.get("intermediate_size"), int) else 4 * hidden
        vocab = cfg.get("vocab_size") if isinstance(cfg.get("vocab_size"), int) else 0
        params = layers * (4 * hidden * hidden + 3 * hidden * inner) + 2 * vocab * hidden
        if params > MAX_PARAMETERS:
            return (f"{prefix}num_hidden_layers: {layers} layers of size {hidden} is about {params:.1e} parameters "
                    f"(at most {MAX_PARAMETERS:.0e})")
    return None


def context_length(config: dict) -> tuple[int, str] | None:
    """(tokens, field) of the language model's context: text_config.max_position_embeddings, else the top level's."""
    for sub, prefix in ((config.get("text_config"), "text_config."), (config, "")):
        if isinstance(sub, dict):
            n = sub.get("max_position_embeddings")
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                return n, f"{prefix}max_position_embeddings"
    return None


def read_config(ckpt: Path) -> dict:
    """config.json of `ckpt` as a dict, or CheckpointError with one line."""
    ckpt = Path(ckpt)
    if not ckpt.exists():
        raise CheckpointError(f"{ckpt}: checkpoint directory not found")
    if not ckpt.is_dir():
        raise CheckpointError(f"{ckpt}: not a directory (pass the checkpoint folder)")
    cfg = ckpt / "config.json"
    if not cfg.is_file():
        found = ", ".join(sorted(p.name for p in ckpt.iterdir())[:6]) or "nothing"
        raise CheckpointError(f"{cfg}: file not found (the folder holds: {found})")
    data = read_json_object(cfg, "a config")
    check_sizes(data, cfg)  # before anything is allocated: a config asking for 10^6 layers is refused here
    return data


def read_json_object(path: Path, what: str) -> dict:
    """A small JSON object file (config.json, adapter_config.json) as a dict, or CheckpointError with one line.

    `what` names the file in the size message (`... bytes is not a config`); such files are a few kilobytes.
    """
    if path.stat().st_size > 16 << 20:
        raise CheckpointError(f"{path}: {path.stat().st_size:,} bytes is not {what}")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{path}: not valid JSON: {str(e)[:200]}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data
