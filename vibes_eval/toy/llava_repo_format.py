"""The toy zoo in the original LLaVA repo's on-disk layouts (haotian-liu/LLaVA outputs).

`write_llava_repo(hf_dir, out)` turns one transformers-native toy checkpoint into the folders
that repo's training scripts leave behind, without needing the `llava` package:

    out/vision_tower/  the CLIP tower alone (CLIPVisionModel + preprocessor_config.json), what
                       `mm_vision_tower` names (openai/clip-vit-large-patch14-336, only tiny)
    out/base/          the LLM alone (LlamaForCausalLM + tokenizer): what stage 1 starts from
    out/full/          a released checkpoint: flat LlamaConfig + mm_* keys, original key names,
                       no vision tower weights
    out/stage1/        a stage-1 output: mm_projector.bin + config.json, next to base/
    out/lora/          a LoRA output over base/: adapter files + non_lora_trainables.bin

`build_llava_repo(out, variants, seed)` does that for zoo variants (`vibes-eval toy build OUT
--format llava-repo`). The LoRA's B matrices are zero, so base + LoRA is the toy's own LLM:
the point is the loading path, not the delta.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

__all__ = ["LAYOUTS", "build_llava_repo", "original_state", "write_llava_repo"]

LAYOUTS = ("full", "stage1", "lora", "base", "vision_tower")
"""The folders write_llava_repo creates, in the order it creates them."""

LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def original_state(model, missing: set[str] = frozenset()) -> tuple[dict, dict, dict]:
    """Split a transformers-native LlavaForConditionalGeneration into the original key names.

    Args:
        model: the loaded HF model (transformers 5.x module names).
        missing: its loading report's missing keys: tensors the HF checkpoint did not hold stay
            absent here too (the `missing-projector` variant keeps its hole).

    Returns:
        (llm, projector, tower): `model.*` + `lm_head.weight`; `model.mm_projector.{0,2}.*`;
        the CLIP tower's own state dict.
    """
    llm, proj, tower = {}, {}, {}
    names = {"linear_1": "0", "linear_2": "2"}  # nn.Sequential(Linear, GELU, Linear) in the original
    for key, value in model.state_dict().items():
        if key in missing:
            continue
        value = value.detach().clone().contiguous()
        if key.startswith("model.language_model."):
            llm["model." + key[len("model.language_model.") :]] = value
        elif key.startswith("lm_head."):
            llm[key] = value
        elif key.startswith("model.multi_modal_projector."):
            layer, rest = key[len("model.multi_modal_projector.") :].split(".", 1)
            proj[f"model.mm_projector.{names[layer]}.{rest}"] = value
        elif key.startswith("model.vision_tower."):
            tower[key[len("model.vision_tower.") :]] = value
    return llm, proj, tower


def _mm_keys(config, tower_ref: str) -> dict:
    """The mm_* keys the original training scripts add to the LLM's config."""
    return {
        "mm_vision_tower": tower_ref,
        "mm_projector_type": "mlp2x_gelu",
        "mm_hidden_size": config.vision_config.hidden_size,
        "mm_vision_select_layer": config.vision_feature_layer,
        "mm_vision_select_feature": "patch" if config.vision_feature_select_strategy == "default" else "cls_patch",
        "mm_use_im_start_end": False,
        "mm_use_im_patch_token": False,
        "image_aspect_ratio": "pad",
        "tune_mm_mlp_adapter": False,
        "freeze_mm_mlp_adapter": False,
        "use_mm_proj": True,
    }


# PretrainedConfig bookkeeping that a 4.3x-era LLaVA config.json does not carry
_GENERIC = ("_name_or_path", "transformers_version", "dtype", "torch_dtype", "id2label", "label2id", "chunk_size_feed_forward",
            "is_encoder_decoder", "output_attentions", "output_hidden_states", "return_dict", "problem_type", "rope_parameters")


def _write_config(folder: Path, text_config: dict, mm: dict, architectures: list[str]) -> None:
    cfg = {k: v for k, v in text_config.items() if k not in _GENERIC}
    rope = text_config.get("rope_parameters") or {}
    # written the 4.3x way (rope_theta + rope_scaling), as the released checkpoints have it
    cfg.update(rope_theta=rope.get("rope_theta", 10000.0), rope_scaling=None, torch_dtype="float32")
    cfg.update({**mm, "architectures": architectures, "model_type": "llava_llama"})
    (folder / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def write_llava_repo(hf_ckpt_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Write `hf_ckpt_dir` (a toy LlavaForConditionalGeneration folder) in the original layouts.

    Args:
        hf_ckpt_dir: a transformers-native toy checkpoint (e.g. the zoo's `healthy/`).
        out_dir: created if needed; gets one folder per name in LAYOUTS (replaced if present).

    Returns:
        The folder of each layout, by name.
    """
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file
    from transformers import AutoProcessor, CLIPVisionModel, LlamaConfig, LlamaForCausalLM, LlavaForConditionalGeneration

    from vibes_eval.adapters.peft_merge import peft_quiet

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {name: out_dir / name for name in LAYOUTS}
    for path in paths.values():
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()

    model, info = LlavaForConditionalGeneration.from_pretrained(hf_ckpt_dir, local_files_only=True, output_loading_info=True)
    processor = AutoProcessor.from_pretrained(hf_ckpt_dir, local_files_only=True)
    llm, proj, tower = original_state(model, set(info["missing_keys"]))
    config = model.config
    tokenizer = processor.tokenizer
    tokenizer.chat_template = None  # the original format carries no chat template

    # vision_tower/: what openai/clip-vit-large-patch14-336 is to a real checkpoint
    clip = CLIPVisionModel(config.vision_config)
    clip.load_state_dict(tower, strict=True)
    clip.save_pretrained(paths["vision_tower"])
    processor.image_processor.save_pretrained(paths["vision_tower"])

    # base/: the LLM alone, as a Vicuna folder would hold it
    text = config.text_config.to_dict()
    llama = LlamaForCausalLM(LlamaConfig(**{k: v for k, v in text.items() if k not in ("architectures", "model_type")}))
    llama.load_state_dict(llm, strict=True)
    llama.save_pretrained(paths["base"])
    tokenizer.save_pretrained(paths["base"])

    # full/: flat LlamaConfig + mm_* keys, original key names, the tower stripped (as released)
    mm = _mm_keys(config, "../vision_tower")  # resolved against the checkpoint folder first
    _write_config(paths["full"], text, mm, ["LlavaLlamaForCausalLM"])
    save_file({**llm, **proj}, str(paths["full"] / "model.safetensors"), metadata={"format": "pt"})
    tokenizer.save_pretrained(paths["full"])
    model.generation_config.save_pretrained(paths["full"])

    # stage1/: only the projector; the original writes config.json with these mm_* keys too
    _write_config(paths["stage1"], text, {**mm, "tune_mm_mlp_adapter": True}, ["LlamaForCausalLM"])
    torch.save(proj, paths["stage1"] / "mm_projector.bin")

    # lora/: a PEFT adapter over base/ (B = 0: merged, it is base itself) + the projector
    lora_cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    with peft_quiet():
        peft_model = get_peft_model(llama, lora_cfg)
    peft_model.save_pretrained(paths["lora"])
    _write_config(paths["lora"], text, mm, ["LlavaLlamaForCausalLM"])
    # the original's get_peft_state_non_lora_maybe_zero_3 keeps the PeftModel prefix
    torch.save({"base_model.model." + k: v for k, v in proj.items()}, paths["lora"] / "non_lora_trainables.bin")
    return paths


def build_llava_repo(out: Path, variants: list[str], seed: int = 0, log=print, bars=None) -> dict:
    """`vibes-eval toy build OUT --format llava-repo`: OUT/<variant>/{full,stage1,lora,base,vision_tower}.

    The layout folders `vibes-eval run` is pointed at (full, stage1, lora) carry the toy marker,
    so the shapes suite is picked for them. The toy was trained on the llava-1.5-hf conversation,
    which these folders cannot record: run them with `--template llava-1.5-hf`. The
    `wrong-template` variant is the healthy one here (the original format has no chat template).

    Returns:
        The zoo's build info, as factory.build returns it (held-out accuracy per variant).
    """
    from vibes_eval.resources import TOY_MARKER
    from vibes_eval.toy.factory import build_zoo
    from vibes_eval.toy.variants import FACTORY_VERSION, VARIANTS

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    zoo = build_zoo(seed, log, bars)
    out = Path(out)
    for name in variants:
        paths = write_llava_repo(zoo / name, out / name)
        for layout in ("full", "stage1", "lora"):
            marker = {"variant": name, "factory_version": FACTORY_VERSION, "seed": seed, "format": "llava-repo", "layout": layout}
            (paths[layout] / TOY_MARKER).write_text(json.dumps(marker) + "\n")
    return json.loads((zoo / "zoo.json").read_text())
