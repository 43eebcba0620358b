"""One record per LLaVA family: what every part of vibes-eval needs to know about it.

The adapter profiles (`adapters/*.yaml` name a `family:` and inherit its architectures,
template and stop strings), detection (`adapters/detect.py`: architectures, and the original
repo's `mm_*` markers), the budget (`budget_family`), the HF loader (projector module, prefix
eligibility) and the CLI's help read these records. Adding an architecture to a family is one
edit here; a new family is one record here plus a profile naming it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["FAMILIES", "HF_ARCHITECTURES", "Family", "family_for", "original_layout", "prefix_path"]


@dataclass(frozen=True)
class Family:
    """A LLaVA family as vibes-eval serves it."""

    name: str
    model_type: str | None
    """config.json `model_type` of the transformers class it loads as (None: decided by conversion)."""
    architectures: tuple[str, ...]
    """config.json `architectures[0]` values of this family."""
    loader: str
    """The registry name of its loader (vibes_eval.adapters.registry.LOADERS)."""
    template: str | None
    """Known template (vibes_eval.adapters.templates) used when the checkpoint ships no chat template."""
    stop_strings: tuple[str, ...]
    projector: str
    """Attribute path of the vision-to-language projector in the loaded transformers model."""
    prefix_path: bool
    """One image at a fixed token count before the question: the shared-prefix engine applies."""
    budget_family: str | None
    """The `vibes-eval budget --family` reference geometry; None: read from the checkpoint only."""
    geometry: str
    """How the budget reads the vision geometry: `transformers` (vision_config + processor files)
    or `llava-repo` (mm_vision_tower and the mm_* keys)."""
    description: str


_PROJECTOR = "multi_modal_projector"

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            name="llava",
            model_type="llava",
            architectures=("LlavaForConditionalGeneration",),
            loader="hf",
            template="llava-1.5-hf",
            stop_strings=("</s>", "USER:"),
            projector=_PROJECTOR,
            prefix_path=True,
            budget_family="llava",
            geometry="transformers",
            description="transformers-native LLaVA-1.5",
        ),
        Family(
            name="llava-next",
            model_type="llava_next",
            architectures=("LlavaNextForConditionalGeneration", "LlavaNextVideoForConditionalGeneration"),
            loader="hf",
            template="llava-next-mistral-hf",
            stop_strings=("</s>", "[INST]"),
            projector=_PROJECTOR,
            prefix_path=False,
            budget_family="llava-next",
            geometry="transformers",
            description="transformers-native LLaVA-NeXT (v1.6, AnyRes) and LLaVA-NeXT-Video",
        ),
        Family(
            name="llava-onevision",
            model_type="llava_onevision",
            architectures=("LlavaOnevisionForConditionalGeneration",),
            loader="hf",
            template="llava-onevision-hf",
            stop_strings=("<|im_end|>",),
            projector=_PROJECTOR,
            prefix_path=False,
            budget_family="llava-onevision",
            geometry="transformers",
            description="transformers-native LLaVA-OneVision (SigLIP tower, Qwen2 LLM)",
        ),
        Family(
            name="vipllava",
            model_type="vipllava",
            architectures=("VipLlavaForConditionalGeneration",),
            loader="hf",
            template="llava_v0",  # llava-hf/vip-llava-*-hf: "...###Human: <image>\n{q}###Assistant:"
            stop_strings=("###", "</s>"),
            projector=_PROJECTOR,  # a layer norm over several tower layers' features, then the 2-layer MLP
            prefix_path=False,
            budget_family="llava",  # CLIP geometry, CLS dropped; the projector input is the layers' features concatenated
            geometry="transformers",
            description="transformers-native ViP-LLaVA (features of several CLIP layers, CLS dropped)",
        ),
        Family(
            name="video-llava",
            model_type="video_llava",
            architectures=("VideoLlavaForConditionalGeneration",),
            loader="hf",
            template="llava-1.5-hf",  # LanguageBind/Video-LLaVA-7B-hf: "USER: <image>\n{q} ASSISTANT:"
            stop_strings=("</s>", "USER:"),
            projector=_PROJECTOR,
            prefix_path=False,
            budget_family="llava",  # its image tower: CLIP geometry, strategy default
            geometry="transformers",
            description="transformers-native Video-LLaVA on image prompts (pixel_values_images)",
        ),
        Family(
            name="llava-repo",
            model_type=None,
            architectures=("LlavaLlamaForCausalLM", "LlavaMistralForCausalLM"),
            loader="llava_repo",
            template=None,  # the format records none: the loader uses vicuna_v1 and says so
            stop_strings=("</s>", "USER:"),
            projector=_PROJECTOR,  # converted in memory to transformers' classes
            prefix_path=True,
            budget_family=None,
            geometry="llava-repo",
            description="original LLaVA repo checkpoints (flat LLM config + mm_* keys), converted in memory",
        ),
    )
}
"""Every family, by name."""

ORIGINAL_KEYS = ("mm_vision_tower", "mm_projector_type")
"""config.json keys only the original LLaVA repos write (their configs also say model_type llava)."""
ORIGINAL_FILES = ("mm_projector.bin",)
"""A stage-1 output of the original repo: the projector alone next to config.json."""


def original_layout(cfg: dict, folder: Path | None = None) -> bool:
    """Whether config.json `cfg` (of `folder`) is the original LLaVA repo's format: checked before architectures."""
    return any(k in cfg for k in ORIGINAL_KEYS) or (
        folder is not None and any((Path(folder) / f).is_file() for f in ORIGINAL_FILES)
    )


def family_for(cfg: dict, folder: Path | None = None) -> Family | None:
    """The family of a checkpoint from its config.json (and folder), or None when it is not a LLaVA."""
    if original_layout(cfg, folder):
        return FAMILIES["llava-repo"]
    archs = cfg.get("architectures") or [None]
    return next((f for f in FAMILIES.values() if archs[0] in f.architectures), None)


HF_ARCHITECTURES: dict[str, str] = {a: f.name for f in FAMILIES.values() if f.loader == "hf" for a in f.architectures}
"""transformers-native architecture -> family name."""


def prefix_path(model_type: str) -> bool:
    """Whether a loaded model of `model_type` takes the shared-prefix path (a family that allows it loads as it)."""
    return any(f.prefix_path and f.model_type == model_type for f in FAMILIES.values())
