"""Adapter profiles (YAML in `adapters/`) and the detection of which one fits a checkpoint.

Detection reads `config.json` `architectures`, never the directory name. The original LLaVA
repo's outputs also say `model_type: llava`, so they are recognised by their `mm_*` keys
before anything trusts the architecture name.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["CheckpointError", "Profile", "detect", "load_profile", "profiles", "read_config"]

PROFILE_DIR = Path(__file__).resolve().parents[2] / "adapters"


class CheckpointError(Exception):
    """The checkpoint cannot be evaluated: one line naming the file and field (exit code 3)."""


class Profile(BaseModel):
    """An adapter profile: which loader serves which architectures, and with what defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    loader: Literal["hf", "openai", "llava_repo"]
    """The loader code in vibes_eval/loaders/ that builds the Adapter."""
    architectures: list[str]
    """config.json `architectures[0]` values this profile serves."""
    template: str | None = None
    """Template (vibes_eval.templates) used when the checkpoint ships no chat template (None: a server applies its own)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    stop_strings: list[str] = []
    source: str = ""


def load_profile(path: Path) -> Profile:
    """Read one profile YAML; a bad one raises ValueError with `file: field: problem`."""
    try:
        data = yaml.safe_load(Path(path).read_text())
        return Profile.model_validate({**(data or {}), "source": str(path)})
    except (OSError, yaml.YAMLError) as e:
        raise ValueError(f"{path}: {e}".splitlines()[0]) from None
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise ValueError(f"{path}: {field}: {err['msg']}") from None


def profiles(folder: Path = PROFILE_DIR) -> dict[str, Profile]:
    """Every profile in `folder`, by name."""
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        p = load_profile(path)
        out[p.name] = p
    return out


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
    if cfg.stat().st_size > 16 << 20:  # a config is a few kilobytes
        raise CheckpointError(f"{cfg}: {cfg.stat().st_size:,} bytes is not a config")
    try:
        data = json.loads(cfg.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise CheckpointError(f"{cfg}: not valid JSON: {str(e)[:200]}") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{cfg}: expected a JSON object")
    from vibes_eval.loaders.sanity import check_sizes

    check_sizes(data, cfg)  # before anything is allocated: a config asking for 10^6 layers is refused here
    return data


def detect(ckpt: Path, adapter: str | None = None) -> Profile:
    """The profile for `ckpt`: `adapter` (a profile name or a YAML file) if given, else by config.json.

    Raises:
        CheckpointError: not a LLaVA-family checkpoint, or one whose format has no loader yet.
        ValueError: `adapter` names no known profile (a usage error).
    """
    known = profiles()
    if adapter:
        if adapter.endswith((".yaml", ".yml")) or Path(adapter).is_file():
            return load_profile(Path(adapter))
        if adapter not in known:
            raise ValueError(f"--adapter: unknown profile {adapter!r}; known: {', '.join(known)}")
        read_config(ckpt)
        return known[adapter]
    cfg = read_config(ckpt)
    archs = cfg.get("architectures") or []
    arch = archs[0] if archs else None
    # match on mm_* keys first: HF and original LLaVA both say model_type "llava"
    if "mm_vision_tower" in cfg or "mm_projector_type" in cfg or (Path(ckpt) / "mm_projector.bin").is_file():
        repo = [p for p in known.values() if p.loader == "llava_repo"]
        if not repo:
            raise CheckpointError(f"{Path(ckpt) / 'config.json'}: the original LLaVA repo format, but no profile in adapters/ has loader llava_repo")
        return repo[0]
    for p in known.values():
        if arch in p.architectures:
            return p
    served = sorted({a for p in known.values() for a in p.architectures})
    raise CheckpointError(
        f"{Path(ckpt) / 'config.json'}: architectures: {arch or 'missing'} (model_type {cfg.get('model_type', '?')}) "
        f"is not a LLaVA-family model; known: {', '.join(served)}"
    )
