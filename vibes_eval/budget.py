"""Visual-token budget: how many LLM positions one image costs, per family and per checkpoint.

The counts follow the code that builds the sequence, not the papers: transformers'
processors (`_get_number_of_features`) and `pack_image_features` for HF checkpoints, and
`llava_arch.py` of the original LLaVA / LLaVA-NeXT repos for their checkpoints. No torch, no
transformers: this module reads JSON and does integer arithmetic, so `vibes-eval budget` is instant.

Sizes are width x height everywhere in this module's API (as PIL and the command line say them);
pinpoints are stored as (height, width), the way transformers reads `image_grid_pinpoints`.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = [
    "CONTEXTS",
    "DEFAULT_IMAGE_SIZES",
    "FAMILIES",
    "LLAVA_NEXT_PINPOINTS",
    "ONEVISION_PINPOINTS",
    "BudgetError",
    "ImageBudget",
    "Projector",
    "VisionSpec",
    "add_budget_parser",
    "best_pinpoint",
    "expand_pinpoints",
    "budget_command",
    "budget_for_checkpoint",
    "parse_image_size",
    "projector_params",
    "visual_tokens",
]

CONTEXTS = (2048, 32768, 131072)
DEFAULT_IMAGE_SIZES = ((336, 336), (672, 672), (1344, 672), (672, 1344))
LLAVA_NEXT_PINPOINTS = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))
ONEVISION_PINPOINTS = tuple((384 * i, 384 * j) for i in range(1, 7) for j in range(1, 7))


class BudgetError(ValueError):
    """A checkpoint or an argument we cannot count tokens for; the message is one line naming file and field."""


@dataclass(frozen=True)
class Projector:
    """The vision-to-language projector: `kind` is the original repo's mm_projector_type."""

    kind: str
    in_features: int
    out_features: int
    bias: bool = True

    @property
    def params(self) -> int:
        return projector_params(self.in_features, self.out_features, self.kind, bias=self.bias)

    def __str__(self) -> str:
        return f"{self.kind} {self.in_features}->{self.out_features}: {self.params:,} parameters"


_PROJECTOR_KIND = re.compile(r"linear|identity|mlp([1-9]\d*)x_gelu")


def projector_params(in_features: int, out_features: int, kind: str = "mlp2x_gelu", *, bias: bool = True) -> int:
    """Parameter count of a LLaVA projector.

    Args:
        in_features: vision hidden size (mm_hidden_size), e.g. 1024 for CLIP-L.
        out_features: LLM hidden size, e.g. 4096.
        kind: `linear`, `identity` or `mlp{N}x_gelu` (N linear layers, GELU between).
        bias: whether the linear layers have biases (they do in every released LLaVA).

    Returns:
        The number of parameters: mlp2x_gelu 1024->4096 with biases is 20,979,712.
    """
    m = _PROJECTOR_KIND.fullmatch(kind)
    if not m:
        raise BudgetError(f"mm_projector_type: unknown projector {kind!r} (known: linear, identity, mlp2x_gelu)")
    if kind == "identity":
        return 0
    depth = int(m.group(1) or 1)  # linear: one layer
    first = in_features * out_features + out_features * bias
    return first + (depth - 1) * (out_features * out_features + out_features * bias)


def best_pinpoint(width: int, height: int, pinpoints) -> tuple[int, int]:
    """The (height, width) pinpoint that keeps most of a width x height image, as LLaVA-NeXT picks it.

    Maximise the effective resolution min(int(W*s) * int(H*s), W*H) with s = min(w/W, h/H);
    ties go to the least wasted area (w*h - effective), then to the first in the list.
    """
    best, best_effective, best_waste = None, 0, math.inf
    for h, w in pinpoints:
        scale = min(w / width, h / height)
        effective = min(int(width * scale) * int(height * scale), width * height)
        waste = w * h - effective
        if effective > best_effective or (effective == best_effective and waste < best_waste):
            best, best_effective, best_waste = (h, w), effective, waste
    if best is None:
        raise BudgetError("image_grid_pinpoints: empty list")
    return best


@dataclass(frozen=True)
class ImageBudget:
    """What one image costs: `tokens` positions in the LLM sequence (base view, tiles, newlines)."""

    width: int
    height: int
    tokens: int
    base_tokens: int
    """The base (overview) view: 576 for CLIP-L/14 at 336, 729 for SigLIP/14 at 384."""
    tiles: tuple[int, int] | None = None
    """AnyRes tiles as (columns, rows); None for a single-view family."""
    resolution: tuple[int, int] | None = None
    """The chosen pinpoint as (width, height) pixels."""
    features: tuple[int, int] | None = None
    """The packed tile feature map as (columns, rows) after unpadding and any downscale, without newlines."""
    processor_tokens: int | None = None
    """Image tokens the checkpoint's processor inserts; differs from `tokens` on a broken processor config."""

    def share(self, context: int) -> float:
        """Fraction of a `context`-token window that this image fills (may exceed 1)."""
        return self.tokens / context

    @property
    def grid(self) -> str:
        """'2x1 @ 672x336': AnyRes tiles (columns x rows) at the chosen pinpoint (W x H); '1 view' otherwise."""
        if self.tiles is None:
            return "1 view"
        (cols, rows), (w, h) = self.tiles, self.resolution
        return f"{cols}x{rows} @ {w}x{h}"


@dataclass(frozen=True)
class VisionSpec:
    """Everything that decides the visual-token count of a checkpoint or a family."""

    family: str
    image_size: int = 336
    patch_size: int = 14
    strategy: str = "default"
    """`default` drops the first token of each view (the CLS for CLIP); `full` keeps every token."""
    has_cls: bool = True
    """The tower prepends a class token (CLIP does, SigLIP does not)."""
    pinpoints: tuple[tuple[int, int], ...] = ()
    """AnyRes resolutions as (height, width); empty for a single-view (llava-1.5) model."""
    max_tiles: int | None = None
    """anyres_max_N: a packed grid larger than about N views is shrunk (OneVision)."""
    merge: str = "spatial_unpad"
    """Original repo's mm_patch_merge_type: flat | spatial | spatial_unpad (transformers always unpads)."""
    layout: str = "transformers"
    """`transformers` or `llava-repo`: the original unpad truncates where transformers rounds first."""
    processor_offset: int | None = 0
    """Processor's image tokens minus the model's features; None when no processor config says."""
    projector: Projector | None = None
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def side(self) -> int:
        return self.image_size // self.patch_size

    @property
    def view_tokens(self) -> int:
        return self.side**2 + self.has_cls - (self.strategy == "default")

    def describe(self) -> str:
        """One line, e.g. 'llava-next: 576 tokens per 336 px view, 5 pinpoints'."""
        what = f"{self.family}: {self.view_tokens} tokens per {self.image_size} px view"
        if self.pinpoints:
            what += f", {len(self.pinpoints)} pinpoints" + (f", max {self.max_tiles}" if self.max_tiles else "")
        return what

    def tokens(self, width: int, height: int) -> int:
        """Visual tokens for one width x height image."""
        return self.image(width, height).tokens

    def image(self, width: int, height: int) -> ImageBudget:
        """The full budget of one width x height image (tokens, grid, processor count)."""
        if width < 1 or height < 1:
            raise BudgetError(f"image size: expected positive width and height, got {width}x{height}")
        base = self.view_tokens
        if not self.pinpoints:
            return self._done(ImageBudget(width, height, base, base))
        pin_h, pin_w = best_pinpoint(width, height, self.pinpoints)
        cols, rows = pin_w // self.image_size, pin_h // self.image_size
        common = dict(tiles=(cols, rows), resolution=(pin_w, pin_h))
        if self.merge == "flat":
            return self._done(ImageBudget(width, height, base * (1 + cols * rows), base, **common))
        if base != self.side**2:
            raise BudgetError(
                f"vision_feature_select_strategy: {self.strategy!r} keeps {base} tokens per view, but AnyRes "
                f"tiling needs exactly {self.side}x{self.side}"
            )
        cur_h, cur_w = rows * self.side, cols * self.side
        if self.merge != "spatial":  # spatial_unpad: drop the padding, then maybe shrink
            cur_h, cur_w = self._unpad(width, height, cur_h, cur_w)
        if self.max_tiles and self.merge != "spatial":
            # anyres_max_N: like pack_image_features, shrink (bilinear) when the grid is >1.1x the N-view area
            ratio = math.sqrt(cur_h * cur_w / (self.max_tiles * self.side**2))
            if ratio > 1.1:
                cur_h, cur_w = int(cur_h // ratio), int(cur_w // ratio)
        newlines = cur_h if self.merge != "spatial" else 0  # one image_newline token closes each row
        tokens = cur_h * cur_w + newlines + base
        return self._done(ImageBudget(width, height, tokens, base, **common, features=(cur_w, cur_h)))

    def _unpad(self, width: int, height: int, cur_h: int, cur_w: int) -> tuple[int, int]:
        # The side with the smaller scale was padded to fit the pinpoint: drop those feature rows/cols,
        # split equally as unpad_image does (an odd leftover stays).
        if self.layout == "transformers":
            scaled = lambda x: int(round(x, 7))  # noqa: E731  transformers rounds away float noise first
        else:
            scaled = int  # the original repos truncate
        if width / height > cur_w / cur_h:
            cur_h -= (cur_h - scaled(height * (cur_w / width))) // 2 * 2
        else:
            cur_w -= (cur_w - scaled(width * (cur_h / height))) // 2 * 2
        return cur_h, cur_w

    def _done(self, b: ImageBudget) -> ImageBudget:
        if self.processor_offset is None:
            return b
        return replace(b, processor_tokens=b.tokens + self.processor_offset)


FAMILIES = {
    "llava": VisionSpec("llava", source="llava-1.5, CLIP-L/14"),
    "llava-next": VisionSpec("llava-next", pinpoints=LLAVA_NEXT_PINPOINTS, source="v1.6, CLIP-L/14"),
    "llava-onevision": VisionSpec(
        "llava-onevision", image_size=384, strategy="full", has_cls=False,
        pinpoints=ONEVISION_PINPOINTS, max_tiles=9, source="SigLIP/14",
    ),
}


def visual_tokens(family: str, width: int, height: int) -> int:
    """Visual tokens of one width x height image in a family's reference setup (llava-next 1344x672 -> 1752)."""
    if family not in FAMILIES:
        raise BudgetError(f"--family: unknown family {family!r} (known: {', '.join(FAMILIES)})")
    return FAMILIES[family].tokens(width, height)


def parse_image_size(text: str) -> tuple[int, int]:
    """'1344x672' -> (1344, 672), width first."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m or int(m.group(1)) < 1 or int(m.group(2)) < 1:
        raise BudgetError(f"--image-size: expected WIDTHxHEIGHT such as 1344x672, got {text!r}")
    return int(m.group(1)), int(m.group(2))


# ---- checkpoints -------------------------------------------------------------------------------

_HF_FAMILIES = {
    "LlavaForConditionalGeneration": "llava",
    "LlavaNextForConditionalGeneration": "llava-next",
    "LlavaNextVideoForConditionalGeneration": "llava-next",
    "LlavaOnevisionForConditionalGeneration": "llava-onevision",
}
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
    cfg_path = folder / "config.json"
    cfg = _read_json(cfg_path)
    # match on mm_vision_tower before model_type: HF and original LLaVA both say "llava"
    if "mm_vision_tower" in cfg:
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
    tower = cfg["mm_vision_tower"]
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


# ---- command line ------------------------------------------------------------------------------


def add_budget_parser(subparsers):
    """Define `vibes-eval budget [CKPT_DIR] [--family F] [--image-size WxH ...]`; returns the sub-parser."""
    p = subparsers.add_parser(
        "budget",
        help="visual tokens per image and the share of a 2k/32k/128k context they fill",
        description="Visual tokens one image costs, for a checkpoint folder or a family (no model is loaded).",
    )
    p.add_argument("checkpoint", nargs="?", type=Path, metavar="CKPT_DIR", help="a checkpoint folder to read")
    p.add_argument("--family", help=f"instead of CKPT_DIR: {' | '.join(FAMILIES)} (default: all three)")
    p.add_argument(
        "--image-size", action="append", metavar="WxH",
        help="image width x height, repeatable or comma separated (default: 336x336,672x672,1344x672,672x1344)",
    )
    return p


def budget_command(args, console=None) -> int:
    """Print one Rich table per spec: image, grid, visual tokens, % of each context. Returns the exit code.

    Bad sizes, an unknown family or an unreadable checkpoint print one line to stderr and return 2.
    """
    try:
        sizes = [parse_image_size(s) for arg in (args.image_size or []) for s in arg.split(",") if s.strip()]
        family, checkpoint = getattr(args, "family", None), getattr(args, "checkpoint", None)
        if family and checkpoint:
            raise BudgetError("give CKPT_DIR or --family, not both")
        if checkpoint:
            specs = [budget_for_checkpoint(checkpoint)]
        elif family:
            if family not in FAMILIES:
                raise BudgetError(f"--family: unknown family {family!r} (known: {', '.join(FAMILIES)})")
            specs = [FAMILIES[family]]
        else:
            specs = list(FAMILIES.values())
        tables = [(spec, [spec.image(w, h) for w, h in sizes or DEFAULT_IMAGE_SIZES]) for spec in specs]
    except BudgetError as e:
        print(f"vibes-eval: {e}", file=sys.stderr)
        return 2
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for spec, budgets in tables:
        table = Table(
            title=spec.describe(), title_justify="left", caption=spec.source or None, caption_justify="left"
        )
        for name in ("image", "grid", "features", "tokens"):
            table.add_column(name, justify="right" if name == "tokens" else "left")
        for ctx in CONTEXTS:
            table.add_column(f"{ctx // 1024}k", justify="right")  # share of a context of that many tokens
        for b in budgets:
            features = f"{b.features[0]}x{b.features[1]}" if b.features else ""
            shares = [f"[red]{b.share(c):.1%}[/]" if b.share(c) > 1 else f"{b.share(c):.1%}" for c in CONTEXTS]
            table.add_row(f"{b.width}x{b.height}", b.grid, features, str(b.tokens), *shares)
        console.print(table)
        if spec.projector:
            console.print(f"projector: {spec.projector}", highlight=False)
        for note in spec.notes:  # a processor that inserts another count, or cannot count at all
            console.print(f"[yellow]warning:[/] {note}", highlight=False)
    return 0
