"""The original LLaVA / LLaVA-NeXT repo config: which architectures and mm_* options the llava_repo loader reads.

`read_options(cfg, cfg_path)` checks config.json's mm_* keys and returns what the conversion
needs; anything unsupported is one CheckpointError line naming the field.
"""

from __future__ import annotations

import re
from pathlib import Path

from vibes_eval.adapters.llava_repo.parts import ASPECTS
from vibes_eval.errors import CheckpointError

__all__ = ["FEATURES", "NEXT_REPO", "TEXT_CONFIGS", "read_options"]

TEXT_CONFIGS = {  # architectures[0] -> the transformers config of the LLM inside
    "LlavaLlamaForCausalLM": "LlamaConfig",
    "LlamaForCausalLM": "LlamaConfig",
    "LlavaMistralForCausalLM": "MistralConfig",
    "MistralForCausalLM": "MistralConfig",
    "LlavaQwenForCausalLM": "Qwen2Config",  # LLaVA-VL/LLaVA-NeXT: OneVision, NeXT-Interleave
    "Qwen2ForCausalLM": "Qwen2Config",
}
NEXT_REPO = ("LlavaQwenForCausalLM", "Qwen2ForCausalLM")
FEATURES = {"patch": "default", "cls_patch": "full"}  # mm_vision_select_feature -> HF strategy


def read_options(cfg: dict, cfg_path: Path) -> dict:
    """The original config's mm_* options checked and read (one CheckpointError line per unsupported field)."""
    arch = (cfg.get("architectures") or ["LlavaLlamaForCausalLM"])[0]
    if arch not in TEXT_CONFIGS:
        raise CheckpointError(f"{cfg_path}: architectures: {arch} is not supported (known: {', '.join(TEXT_CONFIGS)})")
    if cfg.get("mm_use_im_start_end"):
        raise CheckpointError(f"{cfg_path}: mm_use_im_start_end: true (<im_start>/<im_end> around the image) is not supported yet")
    ptype = cfg.get("mm_projector_type", "linear")  # the original's default when the key is absent
    m = re.fullmatch(r"mlp(\d+)x_gelu", ptype)
    if m and int(m.group(1)) != 2:
        raise CheckpointError(
            f"{cfg_path}: mm_projector_type: {ptype} ({m.group(1)} linear layers) is not supported yet: "
            "transformers' Llava projector has exactly 2 (mlp2x_gelu, linear and identity load)"
        )
    if not m and ptype not in ("linear", "identity"):
        raise CheckpointError(f"{cfg_path}: mm_projector_type: {ptype} is not supported (mlp2x_gelu, linear, identity)")
    feature = cfg.get("mm_vision_select_feature", "patch")
    if feature not in FEATURES:
        raise CheckpointError(f"{cfg_path}: mm_vision_select_feature: {feature} is not supported (patch, cls_patch)")
    aspect = cfg.get("image_aspect_ratio") or "square"
    if not ASPECTS.fullmatch(str(aspect)):
        raise CheckpointError(f"{cfg_path}: image_aspect_ratio: {aspect} is not supported (pad, square, anyres, anyres_max_N)")
    if cfg.get("mm_resampler_type"):
        raise CheckpointError(
            f"{cfg_path}: mm_resampler_type: {cfg['mm_resampler_type']} is not supported (transformers' Llava classes have none)"
        )
    pinpoints = cfg.get("image_grid_pinpoints")
    if aspect.startswith("anyres"):
        merge = cfg.get("mm_patch_merge_type", "flat")
        if merge not in ("spatial_unpad", "spatial_unpad_nocrop") if aspect == "anyres" else merge != "spatial_unpad":
            raise CheckpointError(f"{cfg_path}: mm_patch_merge_type: {merge} with {aspect} is not supported (spatial_unpad)")
        if pinpoints is None:
            raise CheckpointError(f"{cfg_path}: image_grid_pinpoints: missing, and image_aspect_ratio is {aspect}")
        if aspect != "anyres" and arch not in NEXT_REPO:
            raise CheckpointError(
                f"{cfg_path}: image_aspect_ratio: {aspect} comes from the LLaVA-NeXT repo, but architectures is {arch}"
            )
    return {
        "architecture": arch,
        "projector_type": "mlp2x_gelu" if m else ptype,
        "strategy": FEATURES[feature],
        "layer": cfg.get("mm_vision_select_layer", -2),
        "aspect": aspect,
        "pinpoints": pinpoints,
        "mm_hidden_size": cfg.get("mm_hidden_size"),
    }
