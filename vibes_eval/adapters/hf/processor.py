"""The processor of a transformers-native checkpoint, loaded the way a smoke test needs it.

Two kinds of real folders break `AutoProcessor.from_pretrained` although the model is fine:

- OneVision and NeXT-Video processors carry a video processor, and transformers' video
  processors need torchvision, which has no release that imports beside the CPU torch 2.13.0.
  The suite has no video: without torchvision the processor is built without it.
- Folders saved before processor_config.json existed (transformers < 4.45, most fine-tunes of
  2024) give a processor without `patch_size`, which then fails every prompt with
  `int // None`. What the model's own config decides is repaired (patch_size from the vision
  config, num_additional_image_tokens from the tower's CLS token, the select strategy) and said
  out loud; what cannot be derived is named with the file to add (CheckpointError, exit 3).
"""

from __future__ import annotations

from pathlib import Path

from vibes_eval.adapters.failures import missing_package, tokenizer_packages
from vibes_eval.errors import CheckpointError

__all__ = ["load_processor", "no_video_class"]


def no_video_class(cls):
    """`cls` (a processor with a video processor) as a subclass that holds none."""

    class NoVideo(cls):
        # the sub-processors a ProcessorMixin holds are the modality-named arguments of __init__:
        # without `video_processor` here, none is kept (nor required)
        def __init__(self, image_processor=None, tokenizer=None, **kwargs):
            cls.__init__(self, image_processor, tokenizer, None, **kwargs)

    NoVideo.__name__ = NoVideo.__qualname__ = cls.__name__
    return NoVideo


def _without_video(cls, ckpt: Path):
    """`cls` built from the folder without its video processor."""
    import transformers

    kw = {"local_files_only": True, "trust_remote_code": False}
    tokenizer = transformers.AutoTokenizer.from_pretrained(ckpt, **kw)
    image_processor = transformers.AutoImageProcessor.from_pretrained(ckpt, **kw)
    settings, _ = cls.get_processor_dict(ckpt, **kw)
    names = cls.__init__.__code__.co_varnames[: cls.__init__.__code__.co_argcount]
    extra = {k: v for k, v in settings.items() if k in names and k not in ("self", "image_processor", "tokenizer", "video_processor")}
    return no_video_class(cls)(image_processor, tokenizer, **extra)


def _processor_class(cfg: dict):
    import transformers
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    name = PROCESSOR_MAPPING_NAMES.get(cfg.get("model_type"))
    return getattr(transformers, name, None) if isinstance(name, str) else None


def load_processor(ckpt: Path, cfg: dict) -> tuple[object, list[str], list[str]]:
    """(processor, repairs, notes): the checkpoint's processor; one phrase per field vibes-eval
    supplied (an old save); how it was built when not as saved (no video processor).

    Raises:
        CheckpointError: a processor file is unreadable, a package is missing, or a field the
            processor needs cannot be derived (the message names the file and the field).
    """
    import transformers

    cls = _processor_class(cfg) or transformers.AutoProcessor
    notes: list[str] = []
    lacking = tokenizer_packages(ckpt)
    if lacking:
        raise CheckpointError(lacking)
    no_video = "video_processor" in getattr(cls, "get_attributes", list)() and not transformers.utils.is_torchvision_available()
    names = cls.__init__.__code__.co_varnames if no_video else ()
    if no_video and "tokenizer" in names and names.index("video_processor") < names.index("tokenizer"):
        # Video-LLaVA's processor hands its video processor on by position: it cannot be built without one
        raise CheckpointError(f"{ckpt}: cannot load the processor: {cls.__name__} needs its video processor, which needs "
                              "the `torchvision` package (pip install torchvision, a build matching your torch)")
    try:
        if no_video:
            processor = _without_video(cls, ckpt)
            notes.append("loaded without the video processor (it needs torchvision; the suite has no video)")
        else:
            processor = cls.from_pretrained(ckpt, local_files_only=True, trust_remote_code=False)
    except ImportError as e:
        what = missing_package(e) or f"{type(e).__name__}: {_first_line(e)}"
        raise CheckpointError(f"{ckpt}: cannot load the processor: {what}") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{ckpt}: cannot load the processor: {type(e).__name__}: {_first_line(e)}") from None
    return processor, _repair(processor, ckpt), notes


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else ""


def _vision(ckpt: Path) -> tuple[int | None, int | None, bool, str]:
    """(patch_size, image_size, has_cls, strategy) as the model will be built: config.json read by transformers
    (a missing vision_config or size is its default, e.g. CLIP-L/14 at 336 px for llava)."""
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(ckpt, local_files_only=True, trust_remote_code=False)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{ckpt / 'config.json'}: cannot read: {type(e).__name__}: {_first_line(e)}") from None
    vc = getattr(config, "vision_config", None)
    tower = str(getattr(vc, "model_type", ""))
    return (getattr(vc, "patch_size", None), getattr(vc, "image_size", None), "siglip" not in tower,
            getattr(config, "vision_feature_select_strategy", None) or "default")


def _repair(processor, ckpt: Path) -> list[str]:
    """Fill what an old save left unset, from config.json; one phrase per value filled."""
    where = ckpt / "config.json"
    lacking = [n for n in ("patch_size", "num_image_tokens", "vision_feature_select_strategy") if getattr(processor, n, 0) is None]
    if not lacking:
        return []
    patch, image, has_cls, strategy = _vision(ckpt)
    done: list[str] = []

    def need(field: str, value):
        if value is None or isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise CheckpointError(
                f"{ckpt / 'processor_config.json'}: {field}: missing (the folder was saved before transformers 4.45) "
                f"and {where} cannot supply it; add processor_config.json with \"{field}\""
            )
        return value

    if hasattr(processor, "patch_size") and processor.patch_size is None:  # llava, llava_next, next-video
        processor.patch_size = need("patch_size", patch)
        done.append(f"patch_size={processor.patch_size} (config.json vision_config)")
        if getattr(processor, "num_additional_image_tokens", None) in (None, 0) and has_cls:
            processor.num_additional_image_tokens = 1
            done.append("num_additional_image_tokens=1 (the CLIP tower's CLS token)")
    if hasattr(processor, "num_image_tokens") and processor.num_image_tokens is None:  # onevision
        size = need("num_image_tokens", patch and image and (image // patch) ** 2)
        processor.num_image_tokens = size
        done.append(f"num_image_tokens={size} (config.json vision_config: ({image} // {patch})^2)")
    if hasattr(processor, "vision_feature_select_strategy") and processor.vision_feature_select_strategy is None:
        processor.vision_feature_select_strategy = strategy
        done.append(f"vision_feature_select_strategy={strategy} (config.json)")
    return done
