"""Visual-token budget of a checkpoint folder: its metadata read into a VisionSpec (vibes_eval.budget.geometry).

transformers-native llava / llava_next / llava_onevision folders (hub-era, 4.5x and 5.x processor
files) and the original LLaVA / LLaVA-NeXT repo formats (config.json with mm_vision_tower). JSON
and integer arithmetic only: no torch, no transformers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from vibes_eval.adapters import families
from vibes_eval.budget.geometry import _PROJECTOR_KIND, FAMILIES, Projector, VisionSpec
from vibes_eval.errors import BudgetError

__all__ = ["budget_for_checkpoint", "expand_pinpoints"]

_HF_FAMILIES = {a: families.FAMILIES[f].budget_family for a, f in families.HF_ARCHITECTURES.items()}
"""transformers-native architecture -> budget family (vibes_eval.adapters.families)."""
# What transformers fills in when vision_config names a tower but omits a size: (image_size, patch_size, hidden).
_TOWER_DEFAULTS = {"clip_vision_model": (224, 32, 768), "siglip_vision_model": (224, 16, 768)}


def _read_json(path: Path, required: bool = True) -> dict | None:
    if not path.is_file():
        if required:
            raise BudgetError(f"{path}: file not found")
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise BudgetError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise BudgetError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _int(where: Path, name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BudgetError(f"{where}: {name}: expected a positive integer, got {value!r}")
    return value


def expand_pinpoints(value: str, tile: int) -> list[list[int]] | None:
    """The LLaVA-NeXT repo's shorthand "(1x1),...,(6x6)": every grid in the range, in tiles of `tile` px
    ([[width, height], ...] in the original's order); None when `value` is not that shorthand."""
    ends = re.findall(r"\((\d+)x(\d+)\)", value)
    if not ends:
        return None
    (a0, b0), (a1, b1) = [tuple(map(int, e)) for e in (ends[0], ends[-1])]
    return [[i * tile, j * tile] for i in range(a0, a1 + 1) for j in range(b0, b1 + 1)]


def _pinpoints(where: Path, value, tile: int, *, swap: bool) -> tuple[tuple[int, int], ...]:
    if isinstance(value, str):
        text, value = value, expand_pinpoints(value, tile)
        if value is None:
            raise BudgetError(f"{where}: image_grid_pinpoints: cannot read {text!r}")
    ok = isinstance(value, list) and value and all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(isinstance(x, int) and x > 0 for x in p) for p in value
    )
    if not ok:
        raise BudgetError(f"{where}: image_grid_pinpoints: expected [[height, width], ...], got {str(value)[:60]}")
    # the original repos read each pair as (width, height), transformers as (height, width)
    return tuple((p[1], p[0]) if swap else (p[0], p[1]) for p in value)


def _max_tiles(where: Path, name: str, value: str) -> int | None:
    m = re.fullmatch(r"anyres_max_(\d+)", str(value))
    if not m:
        raise BudgetError(f"{where}: {name}: expected anyres_max_N, got {value!r}")
    return int(m.group(1))


def _adapter_base(folder: Path) -> Path:
    """The base model folder of the PEFT adapter in `folder` (its adapter_config.json), or BudgetError."""
    from vibes_eval.adapters.peft_adapter import find_adapter
    from vibes_eval.errors import CheckpointError

    try:
        return find_adapter(folder).base
    except CheckpointError as e:
        raise BudgetError(str(e)) from None


def budget_for_checkpoint(path: str | Path) -> VisionSpec:
    """Read a checkpoint folder's metadata and return what decides its visual-token count.

    Args:
        path: a transformers-native llava / llava_next / llava_onevision folder (hub-era, 4.5x or
            5.x processor files) or an original LLaVA repo folder (config.json with mm_vision_tower).

    Returns:
        A VisionSpec; `spec.tokens(width, height)` gives the count, e.g. 576 for llava-1.5-7b.

    Raises:
        BudgetError: one line naming the file and the field that could not be read.
    """
    folder = Path(path)
    if not folder.is_dir():
        raise BudgetError(f"{folder}: checkpoint folder not found")
    if not (folder / "config.json").is_file() and (folder / "adapter_config.json").is_file():
        folder = _adapter_base(folder)  # a PEFT adapter: the geometry is its base's
    cfg_path = folder / "config.json"
    cfg = _read_json(cfg_path)
    # the original format before model_type: HF and original LLaVA both say "llava" (families.original_layout)
    if families.original_layout(cfg, folder):
        return _from_llava_repo(cfg, cfg_path)
    archs = cfg.get("architectures") or [None]
    family = _HF_FAMILIES.get(archs[0])
    if family is None:
        raise BudgetError(
            f"{cfg_path}: architectures: {archs[0]!r} is not a LLaVA-family checkpoint "
            f"(expected {', '.join(_HF_FAMILIES)}, or mm_vision_tower for the original LLaVA format)"
        )
    return _from_transformers(cfg, cfg_path, family)


def _from_transformers(cfg: dict, cfg_path: Path, family: str) -> VisionSpec:
    ref = FAMILIES[family]
    folder = cfg_path.parent
    vc = cfg.get("vision_config")
    if vc is None:  # transformers then builds the family's default tower: CLIP-L/14-336 or SigLIP-so400m/14-384
        image_size, patch_size, has_cls = ref.image_size, ref.patch_size, ref.has_cls
        hidden = 1024 if has_cls else 1152
    else:
        tower = vc.get("model_type", "clip_vision_model" if ref.has_cls else "siglip_vision_model")
        dflt = _TOWER_DEFAULTS.get(tower, (None, None, None))
        image_size = _int(cfg_path, "vision_config.image_size", vc.get("image_size", dflt[0]))
        patch_size = _int(cfg_path, "vision_config.patch_size", vc.get("patch_size", dflt[1]))
        hidden = vc.get("hidden_size", dflt[2])
        has_cls = "siglip" not in tower  # CLIP-style towers prepend a class token; SigLIP has none
    strategy = cfg.get("vision_feature_select_strategy", ref.strategy)
    if strategy not in ("default", "full"):
        raise BudgetError(f"{cfg_path}: vision_feature_select_strategy: expected default or full, got {strategy!r}")

    proc = _read_json(folder / "processor_config.json", required=False) or {}
    # 5.x nests the image processor inside processor_config.json; older folders have preprocessor_config.json
    image_proc = _read_json(folder / "preprocessor_config.json", required=False) or proc.get("image_processor") or {}
    pinpoints, max_tiles = (), None
    if ref.pinpoints:
        raw = cfg.get("image_grid_pinpoints") or image_proc.get("image_grid_pinpoints")
        pinpoints = _pinpoints(cfg_path, raw, image_size, swap=False) if raw else ref.pinpoints
    if ref.max_tiles:
        max_tiles = _max_tiles(cfg_path, "vision_aspect_ratio", cfg.get("vision_aspect_ratio", "anyres_max_9"))

    # The processor trap: it inserts patches + num_additional_image_tokens (- 1 for "default"), the
    # model yields patches + CLS (- 1 for "default"); a CLIP checkpoint needs num_additional_image_tokens=1.
    offset, notes = 0, ()
    if family != "llava-onevision":
        if proc.get("patch_size") is not None:
            extra = proc.get("num_additional_image_tokens", 0)
            if isinstance(extra, bool) or not isinstance(extra, int):
                raise BudgetError(
                    f"{folder / 'processor_config.json'}: num_additional_image_tokens: expected 0 or 1, got {extra!r}"
                )
            offset = extra - has_cls
            if offset:
                notes = (
                    f"{folder / 'processor_config.json'}: num_additional_image_tokens is {extra} but the tower "
                    f"{'has' if has_cls else 'has no'} CLS token: the processor inserts {offset:+d} image token(s) "
                    "against the model's features (\"Image features and image tokens do not match\")",
                )
        else:
            offset, notes = None, (_uncountable(folder, "patch_size", f"patch_size {patch_size} from config.json, "
                                                f"num_additional_image_tokens {int(has_cls)}"),)
    elif not isinstance(proc.get("num_image_tokens"), int):
        offset, notes = None, (_uncountable(folder, "num_image_tokens", f"num_image_tokens {(image_size // patch_size) ** 2}"),)
    layers = cfg.get("vision_feature_layer", -2)
    text_hidden = (cfg.get("text_config") or {}).get("hidden_size", 4096)  # 4096: the Llama/Mistral/Qwen2 default
    projector = None
    if isinstance(hidden, int) and isinstance(text_hidden, int):
        n_layers = len(layers) if isinstance(layers, list) else 1
        bias = bool(cfg.get("multimodal_projector_bias", True))
        projector = Projector("mlp2x_gelu", hidden * n_layers, text_hidden, bias)
    return VisionSpec(
        family, image_size, patch_size, strategy, has_cls, pinpoints, max_tiles,
        processor_offset=offset, projector=projector, source=f"{cfg_path.parent.name}: {cfg['architectures'][0]}",
        notes=notes,
    )


def _uncountable(folder: Path, field: str, repair: str) -> str:
    """The warning for a processor that cannot count image tokens (a save from before transformers 4.45)."""
    where = folder / "processor_config.json"
    state = f"has no {field}" if where.is_file() else "is missing"
    return (f"{where} {state}: the processor cannot count image tokens (saved before transformers 4.45; transformers "
            f"fails every prompt with `int // None`); the counts are the model's; `vibes-eval run` repairs it ({repair})")


def _tower_geometry(tower: str, cfg_path: Path) -> tuple[int, int, bool]:
    """(image_size, patch_size, has_cls) of an original-format mm_vision_tower: a local copy, else its hub name."""
    # the original code resolves mm_vision_tower relative to the working directory; try the checkpoint's too
    for base in (Path.cwd(), cfg_path.parent):
        tower_cfg = base / tower / "config.json"
        if tower_cfg.is_file():
            tc = _read_json(tower_cfg)
            vc = tc.get("vision_config", tc)
            kind = str(vc.get("model_type", tc.get("model_type", "clip")))
            return (
                _int(tower_cfg, "image_size", vc.get("image_size")),
                _int(tower_cfg, "patch_size", vc.get("patch_size")),
                "siglip" not in kind,
            )
    m = re.search(r"patch(\d+)(?:-(\d+))?", tower)
    if not m:
        raise BudgetError(
            f"{cfg_path}: mm_vision_tower: cannot tell the patch size of {tower!r} "
            "(no local copy, no 'patchNN' in the name)"
        )
    # OpenAI names its 224 px towers without a size suffix (clip-vit-large-patch14)
    return int(m.group(2) or 224), int(m.group(1)), "siglip" not in tower.lower()


def _from_llava_repo(cfg: dict, cfg_path: Path) -> VisionSpec:
    tower = cfg.get("mm_vision_tower")
    if not isinstance(tower, str) or not tower:
        raise BudgetError(f"{cfg_path}: mm_vision_tower: expected a tower name or path, got {tower!r}")
    image_size, patch_size, has_cls = _tower_geometry(tower, cfg_path)
    select = cfg.get("mm_vision_select_feature", "patch")
    if select not in ("patch", "cls_patch"):
        raise BudgetError(f"{cfg_path}: mm_vision_select_feature: expected patch or cls_patch, got {select!r}")
    # "patch" drops the CLS token; a SigLIP tower has none to drop
    strategy = "default" if select == "patch" and has_cls else "full"
    aspect = cfg.get("image_aspect_ratio") or "square"
    pinpoints, max_tiles, family = (), None, "llava"
    if aspect not in ("pad", "square"):
        if aspect == "anyres":
            family = "llava-next"
        else:
            max_tiles, family = _max_tiles(cfg_path, "image_aspect_ratio", aspect), "llava-onevision"
        if "image_grid_pinpoints" not in cfg:
            raise BudgetError(f"{cfg_path}: image_grid_pinpoints: missing, and image_aspect_ratio is {aspect!r}")
        pinpoints = _pinpoints(cfg_path, cfg["image_grid_pinpoints"], image_size, swap=True)
    merge = cfg.get("mm_patch_merge_type") or "flat"  # the original code's default
    if merge not in ("flat", "spatial", "spatial_unpad"):
        raise BudgetError(f"{cfg_path}: mm_patch_merge_type: expected flat, spatial or spatial_unpad, got {merge!r}")
    projector = None
    kind = cfg.get("mm_projector_type") or "linear"  # the original code's default
    sizes = cfg.get("mm_hidden_size"), cfg.get("hidden_size")
    # a fork's own projector (resampler, pooling) leaves it unknown; the token count still stands
    if all(isinstance(x, int) for x in sizes) and _PROJECTOR_KIND.fullmatch(str(kind)):
        projector = Projector(kind, *sizes)
    return VisionSpec(
        family, image_size, patch_size, strategy, has_cls, pinpoints, max_tiles, merge, "llava-repo",
        processor_offset=None, projector=projector, source=f"{cfg_path.parent.name}: original LLaVA format",
    )
