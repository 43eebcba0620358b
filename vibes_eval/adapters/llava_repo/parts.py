"""The transformers parts an original-format checkpoint becomes: its vision tower, the Llava class
that fits its `image_aspect_ratio`, and a processor that counts image tokens as that class does.

Both original code bases write the same kind of folder (a flat LLM config plus `mm_*` keys):

- haotian-liu/LLaVA (`LlavaLlamaForCausalLM`, `LlavaMistralForCausalLM`): CLIP tower, `pad` /
  `square` (one view: LlavaForConditionalGeneration) or `anyres` (LlavaNext).
- LLaVA-VL/LLaVA-NeXT (`LlavaQwenForCausalLM`, lmms-lab's OneVision and NeXT-Interleave): a Qwen2
  LLM, usually a SigLIP tower, `anyres_max_N` (LlavaOnevision: the packed grid shrunk to about N
  views) or `pad` (Interleave). `image_grid_pinpoints` may be the shorthand "(1x1),...,(6x6)" in
  tiles of the tower's image size. That repo's SigLIP tower drops its last layer and reads the
  output of the one before, with every token (no CLS): vision_feature_layer -2, strategy full.
  `mm_spatial_pool_*` pools video frames only: images are unaffected, and the suite has no video.
"""

from __future__ import annotations

import re
from pathlib import Path

from vibes_eval.adapters.sanity import read_config
from vibes_eval.errors import CheckpointError

__all__ = ["ASPECTS", "Tower", "build_processor", "hf_target", "load_tower", "parse_pinpoints"]

ASPECTS = re.compile(r"pad|square|anyres|anyres_max_[1-9]\d*")
_TOWERS = {"clip": "CLIP", "clip_vision_model": "CLIP", "siglip": "Siglip", "siglip_vision_model": "Siglip"}


class Tower:
    """A loaded vision tower: its config, module and image processor, and whether it has a CLS token."""

    def __init__(self, config, model, image_processor, kind: str):
        self.config, self.model, self.image_processor, self.kind = config, model, image_processor, kind

    @property
    def has_cls(self) -> bool:
        return self.kind == "CLIP"


def load_tower(tower_dir: Path) -> Tower:
    """The CLIP or SigLIP vision tower saved in `tower_dir` (a vision model, or a full CLIP/SigLIP model)."""
    import transformers

    tower_type = read_config(tower_dir).get("model_type")
    kind = _TOWERS.get(tower_type)
    if kind is None:
        raise CheckpointError(f"{tower_dir / 'config.json'}: model_type: {tower_type}: only CLIP and SigLIP vision towers are supported")
    try:
        config = getattr(transformers, f"{kind}VisionConfig").from_pretrained(tower_dir, local_files_only=True)
        model = getattr(transformers, f"{kind}VisionModel").from_pretrained(tower_dir, local_files_only=True)
        pil = f"{kind}ImageProcessorPil"  # without torchvision, some 5.x releases need the PIL class named
        proc_cls = transformers.AutoImageProcessor
        if not transformers.utils.is_torchvision_available() and hasattr(transformers, pil):
            proc_cls = getattr(transformers, pil)
        image_processor = proc_cls.from_pretrained(tower_dir, local_files_only=True)
    except (OSError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(f"{tower_dir}: cannot load the vision tower: {type(e).__name__}: {first}") from None
    return Tower(config, model, image_processor, kind)


def parse_pinpoints(where: Path, value, tile: int) -> list[list[int]]:
    """`image_grid_pinpoints` as [[width, height], ...] (the original's order): a list, or "(AxB),...,(CxD)"."""
    if isinstance(value, str):
        from vibes_eval.budget.checkpoint import expand_pinpoints

        text, value = value, expand_pinpoints(value, tile)
        if value is None:
            raise CheckpointError(f"{where}: image_grid_pinpoints: cannot read {text!r} (expected \"(1x1),...,(6x6)\")")
    if not (isinstance(value, list) and value and all(isinstance(p, list) and len(p) == 2 for p in value)):
        raise CheckpointError(f"{where}: image_grid_pinpoints: expected a list of [width, height] pairs, got {value!r}")
    return value


def hf_target(opts: dict, common: dict, tower: Tower, where: Path):
    """(config, class) for `opts["aspect"]`: Llava (one view), LlavaNext (anyres), LlavaOnevision (anyres_max_N)."""
    import transformers

    aspect = opts["aspect"]
    if aspect in ("pad", "square"):
        return transformers.LlavaConfig(**common), transformers.LlavaForConditionalGeneration, None
    # the original reads each pinpoint as (width, height), transformers as (height, width): swapped
    pinpoints = [[b, a] for a, b in parse_pinpoints(where, opts["pinpoints"], tower.config.image_size)]
    if aspect == "anyres":
        config = transformers.LlavaNextConfig(image_grid_pinpoints=pinpoints, **common)
        return config, transformers.LlavaNextForConditionalGeneration, pinpoints
    config = transformers.LlavaOnevisionConfig(image_grid_pinpoints=pinpoints, vision_aspect_ratio=aspect, **common)
    return config, transformers.LlavaOnevisionForConditionalGeneration, pinpoints


_KEEP = ("size", "crop_size", "image_mean", "image_std", "resample", "rescale_factor", "do_convert_rgb", "do_normalize")


def build_processor(cls, tower: Tower, tok, strategy: str, pinpoints):
    """The processor for model class `cls`, inserting exactly the image tokens that model expects."""
    import transformers

    from vibes_eval.adapters.hf.processor import no_video_class

    ip = tower.image_processor
    settings = {k: getattr(ip, k) for k in _KEEP if hasattr(ip, k)}
    pil = not transformers.utils.is_torchvision_available()
    common = {"tokenizer": tok, "vision_feature_select_strategy": strategy, "image_token": "<image>", "chat_template": None}
    if cls is transformers.LlavaOnevisionForConditionalGeneration:
        side = tower.config.image_size // tower.config.patch_size
        image_cls = transformers.LlavaOnevisionImageProcessorPil if pil else transformers.LlavaOnevisionImageProcessor
        size = tower.config.image_size
        settings.update(size={"height": size, "width": size}, image_grid_pinpoints=pinpoints)
        settings.pop("crop_size", None)
        # counted with the CLS token that strategy "default" drops again (the processor subtracts 1)
        processor = no_video_class(transformers.LlavaOnevisionProcessor)(
            image_cls(**settings), num_image_tokens=side * side + tower.has_cls, **common)
        if processor.video_token_id in (None, tok.unk_token_id, tok.pad_token_id):  # no <video> in this vocabulary
            processor.video_token_id = None  # else every unk/pad id would count as a video token
        return processor
    common.update(patch_size=tower.config.patch_size, num_additional_image_tokens=int(tower.has_cls))
    if cls is transformers.LlavaNextForConditionalGeneration:
        image_cls = transformers.LlavaNextImageProcessorPil if pil else transformers.LlavaNextImageProcessor
        return transformers.LlavaNextProcessor(image_processor=image_cls(image_grid_pinpoints=pinpoints, **settings), **common)
    return transformers.LlavaProcessor(image_processor=ip, **common)
