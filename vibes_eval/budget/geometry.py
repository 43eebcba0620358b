"""Visual-token budget: how many LLM positions one image costs, per family and per checkpoint.

The counts follow the code that builds the sequence, not the papers: transformers'
processors (`_get_number_of_features`) and `pack_image_features` for HF checkpoints, and
`llava_arch.py` of the original LLaVA / LLaVA-NeXT repos for their checkpoints. No torch, no
transformers: this module reads JSON and does integer arithmetic, so `vibes-eval budget` is instant.

Sizes are width x height everywhere in this module's API (as PIL and the command line say them);
pinpoints are stored as (height, width), the way transformers reads `image_grid_pinpoints`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace

from vibes_eval.errors import BudgetError

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
    "best_pinpoint",
    "parse_image_size",
    "projector_params",
    "visual_tokens",
]

CONTEXTS = (2048, 32768, 131072)
DEFAULT_IMAGE_SIZES = ((336, 336), (672, 672), (1344, 672), (672, 1344))
LLAVA_NEXT_PINPOINTS = ((336, 672), (672, 336), (672, 672), (1008, 336), (336, 1008))
ONEVISION_PINPOINTS = tuple((384 * i, 384 * j) for i in range(1, 7) for j in range(1, 7))


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
