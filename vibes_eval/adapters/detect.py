"""Adapter profiles (YAML in `adapters/`) and the detection of which one fits a checkpoint.

Detection reads `config.json` `architectures`, never the directory name. The original LLaVA
repo's outputs also say `model_type: llava`, so they are recognised by their `mm_*` keys
before anything trusts the architecture name. `detect_checkpoint` returns a `Detection`
(the profile and the parsed config.json), which `open_adapter` hands to the loader, so the
folder's config is read once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from vibes_eval.adapters.families import FAMILIES, original_layout
from vibes_eval.adapters.layouts import check_distributed, check_quantization
from vibes_eval.adapters.peft_adapter import PeftAdapter, find_adapter
from vibes_eval.adapters.registry import LOADERS
from vibes_eval.adapters.sanity import read_config
from vibes_eval.errors import CheckpointError, UsageError
from vibes_eval.resources import profiles_dir

__all__ = [
    "PROFILE_DIR",
    "CheckpointError",
    "Detection",
    "Profile",
    "detect",
    "detect_checkpoint",
    "load_profile",
    "profiles",
    "resolve_profile",
]

PROFILE_DIR = profiles_dir()
"""The bundled profiles (the clone's `adapters/`, `vibes_eval/profiles` in a wheel)."""


class Profile(BaseModel):
    """An adapter profile: which loader serves which architectures, and with what defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    family: str | None = None
    """A vibes_eval.adapters.families record: the loader, architectures, template and stop strings not given here."""
    loader: str
    """The loader that builds the Adapter: a name in `vibes_eval.adapters.registry.LOADERS`."""
    architectures: list[str]
    """config.json `architectures[0]` values this profile serves."""
    template: str | None = None
    """Template (vibes_eval.adapters.templates) used when the checkpoint ships no chat template (None: a server applies its own)."""
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    stop_strings: list[str] = []
    source: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_family(cls, data: Any) -> Any:
        """Fill what the profile leaves out from its family's record."""
        if not isinstance(data, dict) or data.get("family") is None:
            return data
        fam = FAMILIES.get(data["family"])
        if fam is None:
            raise ValueError(f"family: unknown family {data['family']!r}; known: {', '.join(FAMILIES)}")
        inherited = {"loader": fam.loader, "architectures": list(fam.architectures), "template": fam.template,
                     "stop_strings": list(fam.stop_strings)}
        return {**inherited, **data}

    @field_validator("loader")
    @classmethod
    def _known_loader(cls, v: str) -> str:
        if v not in LOADERS:
            raise ValueError(f"unknown loader {v!r}; known: {', '.join(LOADERS)}")
        return v


def load_profile(path: Path) -> Profile:
    """Read one profile YAML; a bad one raises UsageError (a ValueError) with `file: field: problem`."""
    try:
        data = yaml.safe_load(Path(path).read_text())
        return Profile.model_validate({**(data or {}), "source": str(path)})
    except (OSError, yaml.YAMLError) as e:
        raise UsageError(f"{path}: {e}".splitlines()[0]) from None
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise UsageError(f"{path}: {field}: {err['msg']}") from None


def profiles(folder: Path = PROFILE_DIR) -> dict[str, Profile]:
    """Every profile in `folder`, by name."""
    out = {}
    for path in sorted(folder.glob("*.yaml")):
        p = load_profile(path)
        out[p.name] = p
    return out


@dataclass(frozen=True)
class Detection:
    """What a checkpoint folder is: the profile that serves it and its parsed config.json."""

    checkpoint: Path
    profile: Profile
    config: dict[str, Any]
    """config.json as read once by detection (a PEFT adapter's: its base's); loaders take it from here."""
    peft: PeftAdapter | None = None
    """The PEFT adapter when the folder is one (adapters/peft_adapter.py: its base resolved), else None."""

    @property
    def architecture(self) -> str | None:
        archs = self.config.get("architectures") or []
        return archs[0] if archs else None


def resolve_profile(adapter: str, known: dict[str, Profile] | None = None) -> Profile:
    """The profile `adapter` names: a bundled profile's name, or a YAML file. UsageError if neither."""
    known = profiles() if known is None else known
    if adapter.endswith((".yaml", ".yml")) or Path(adapter).is_file():
        return load_profile(Path(adapter))
    if adapter not in known:
        raise UsageError(f"--adapter: unknown profile {adapter!r}; known: {', '.join(known)}")
    return known[adapter]


def is_llava_repo(ckpt: Path, cfg: dict) -> bool:
    """The original LLaVA repo's format (families.original_layout): `mm_*` keys, or a stage-1 `mm_projector.bin`."""
    return original_layout(cfg, ckpt)


def _peft_adapter(ckpt: Path, base: Path | None) -> PeftAdapter | None:
    """The PEFT adapter in `ckpt`, unless the folder is the original LLaVA repo's LoRA layout (config.json with mm_* keys)."""
    if not (ckpt / "adapter_config.json").is_file():
        return None
    if (ckpt / "config.json").is_file() and is_llava_repo(ckpt, read_config(ckpt)):
        return None
    return find_adapter(ckpt, base)


def detect_checkpoint(ckpt: Path, adapter: str | None = None, base: Path | None = None, *,
                      trust_remote_code: bool = False) -> Detection:
    """The profile for `ckpt` and its config: `adapter` (a profile name or a YAML file) if given, else by config.json.

    Layouts that cannot load as they are (a ZeRO or FSDP folder without consolidated weights, a
    weight file of 0-element tensors, a quantized checkpoint whose package is missing) are refused
    first, in one line (adapters/layouts.py). A PEFT adapter folder is detected by its base's
    config.json: `base` (--base), else its adapter_config.json's base_model_name_or_path. A folder
    with its own code (config.json `auto_map`) is served by the `remote-code` profile only with
    `trust_remote_code`.

    Raises:
        CheckpointError: not a LLaVA-family checkpoint, or one whose format has no loader yet.
        UsageError: `adapter` names no known profile (a usage error; also a ValueError).
    """
    ckpt = Path(ckpt)
    known = profiles()
    named = resolve_profile(adapter, known) if adapter else None  # a usage error before anything about the folder
    check_distributed(ckpt)
    peft = _peft_adapter(ckpt, base)
    model_dir = peft.base if peft is not None else ckpt
    if peft is not None:
        check_distributed(model_dir)
    cfg = read_config(model_dir)
    check_quantization(cfg, model_dir / "config.json")
    if named is not None:
        return Detection(ckpt, named, cfg, peft)
    arch = (cfg.get("architectures") or [None])[0]
    # match on mm_* keys first: HF and original LLaVA both say model_type "llava"
    if is_llava_repo(model_dir, cfg):
        repo = [p for p in known.values() if p.loader == "llava_repo"]
        if not repo:
            raise CheckpointError(
                f"{ckpt / 'config.json'}: the original LLaVA repo format, but no profile in adapters/ has loader llava_repo"
            )
        if peft is not None:
            raise CheckpointError(f"{model_dir}: the base of PEFT adapter {ckpt} is an original LLaVA repo checkpoint; "
                                  "merge the adapter with that repo's scripts, or train it on a transformers-native base")
        return Detection(ckpt, repo[0], cfg)
    for p in known.values():
        if arch in p.architectures:
            return Detection(ckpt, p, cfg, peft)
    if isinstance(cfg.get("auto_map"), dict) and trust_remote_code and "remote-code" in known:
        return Detection(ckpt, known["remote-code"], cfg, peft)
    served = sorted({a for p in known.values() for a in p.architectures})
    if isinstance(cfg.get("auto_map"), dict):
        raise CheckpointError(f"{model_dir / 'config.json'}: architectures: {arch or 'missing'} comes with its own code "
                              "(auto_map); pass --trust-remote-code to run the folder's code files")
    raise CheckpointError(
        f"{model_dir / 'config.json'}: architectures: {arch or 'missing'} (model_type {cfg.get('model_type', '?')}) "
        f"is not a LLaVA-family model; known: {', '.join(served)}"
    )


def detect(ckpt: Path, adapter: str | None = None) -> Profile:
    """The profile for `ckpt` (`detect_checkpoint(...).profile`)."""
    return detect_checkpoint(ckpt, adapter).profile
