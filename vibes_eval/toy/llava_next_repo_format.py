"""The toy zoo in the LLaVA-NeXT repository's on-disk layout (LLaVA-VL/LLaVA-NeXT outputs, such as
lmms-lab's OneVision and NeXT-Interleave checkpoints).

`write_llava_next_repo(hf_dir, out)` writes one transformers-native toy as that repo's training
scripts leave it: a flat Qwen2 config with `architectures: ["LlavaQwenForCausalLM"]` and the
`mm_*` keys (`mm_spatial_pool_*`, `mm_newline_position`, pinpoints as "(1x1),...,(2x2)"),
weights in the original names, the vision tower in the checkpoint (OneVision trains it):

    out/vision_tower/  the toy's CLIP tower (what `mm_vision_tower` names)
    out/pad/           image_aspect_ratio pad: one view, as the toy was trained (NeXT-Interleave's setting)
    out/anyres_max/    image_aspect_ratio anyres_max_9 with image_newline (OneVision's setting)

The toy's LLM is a Llama; a Qwen2 is a Llama with biases on q/k/v, so it is written as a Qwen2
with those biases zero and computes the same function. The toy was trained on one 64 px view:
`pad/` answers as the toy does; `anyres_max/` shows the conversion and the token layout (its
answers need not be right). `vibes-eval toy build OUT --format llava-next-repo`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

__all__ = ["NEXT_LAYOUTS", "build_llava_next_repo", "write_llava_next_repo"]

NEXT_LAYOUTS = ("vision_tower", "pad", "anyres_max")

_TEXT_KEYS = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
              "vocab_size", "rms_norm_eps", "max_position_embeddings", "hidden_act", "bos_token_id", "eos_token_id", "pad_token_id")


def _config(text: dict, tower_hidden: int, aspect: str, tile: int) -> dict:
    rope = text.get("rope_parameters") or {}
    cfg = {k: text[k] for k in _TEXT_KEYS if text.get(k) is not None}
    cfg.update(
        architectures=["LlavaQwenForCausalLM"], model_type="llava", rope_theta=rope.get("rope_theta", 10000.0),
        tie_word_embeddings=False, use_sliding_window=False, sliding_window=None, torch_dtype="float32",
        mm_vision_tower="../vision_tower", mm_projector_type="mlp2x_gelu", mm_hidden_size=tower_hidden,
        mm_vision_select_layer=-2, mm_vision_select_feature="patch", mm_use_im_start_end=False, mm_use_im_patch_token=False,
        mm_patch_merge_type="spatial_unpad", mm_spatial_pool_mode="bilinear", mm_spatial_pool_stride=2,
        mm_newline_position="grid", mm_resampler_type=None, mm_tunable_parts="mm_vision_tower,mm_mlp_adapter,mm_language_model",
        image_aspect_ratio=aspect, image_grid_pinpoints="(1x1),...,(2x2)" if aspect != "pad" else None,
        image_crop_resolution=None, image_split_resolution=None, vision_tower_pretrained=None,
        tokenizer_model_max_length=2048, tokenizer_padding_side="right",
    )
    return cfg


def write_llava_next_repo(hf_ckpt_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Write `hf_ckpt_dir` (a toy LlavaForConditionalGeneration folder) in the LLaVA-NeXT repo layout.

    Returns:
        The folder of each layout in NEXT_LAYOUTS, by name (replaced if present).
    """
    import torch
    import transformers
    from safetensors.torch import save_file
    from transformers import AutoProcessor, CLIPVisionModel, LlavaForConditionalGeneration

    from vibes_eval.toy.llava_repo_format import original_state

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    out_dir = Path(out_dir)
    paths = {name: out_dir / name for name in NEXT_LAYOUTS}
    for path in paths.values():
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True)
    model, info = LlavaForConditionalGeneration.from_pretrained(hf_ckpt_dir, local_files_only=True, output_loading_info=True)
    processor = AutoProcessor.from_pretrained(hf_ckpt_dir, local_files_only=True)
    llm, proj, tower = original_state(model, set(info["missing_keys"]))
    tokenizer = processor.tokenizer
    tokenizer.chat_template = None  # the repo's checkpoints carry none either
    vision = model.config.vision_config
    clip = CLIPVisionModel(vision)
    clip.load_state_dict(tower, strict=True)
    clip.save_pretrained(paths["vision_tower"])
    processor.image_processor.save_pretrained(paths["vision_tower"])

    text = model.config.text_config.to_dict()
    for name in ("q_proj", "k_proj", "v_proj"):  # Qwen2's attention biases: zero, so the function is the Llama's
        for key in [k for k in llm if k.endswith(f"self_attn.{name}.weight")]:
            llm[key.replace(".weight", ".bias")] = torch.zeros(llm[key].shape[0])
    in_ckpt = {f"model.vision_tower.vision_tower.{k}": v.clone() for k, v in clip.state_dict().items()}
    for layout, aspect in (("pad", "pad"), ("anyres_max", "anyres_max_9")):
        folder = paths[layout]
        cfg = _config(text, vision.hidden_size, aspect, vision.image_size)
        cfg = {k: v for k, v in cfg.items() if v is not None or k.startswith("mm_")}
        (folder / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        state = {**llm, **proj, **in_ckpt}
        if aspect != "pad":  # what separates the rows of the packed grid; OneVision trains it
            state["model.image_newline"] = torch.zeros(text["hidden_size"])
        save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(folder)
        model.generation_config.save_pretrained(folder)
    return paths


def build_llava_next_repo(out: Path, variants: list[str], seed: int = 0, log=print, bars=None) -> dict:
    """`vibes-eval toy build OUT --format llava-next-repo`: OUT/<variant>/{vision_tower,pad,anyres_max}.

    The toy was trained on the llava-1.5-hf conversation: run these with `--template llava-1.5-hf`.
    """
    from vibes_eval.resources import TOY_MARKER
    from vibes_eval.toy.factory import build_zoo
    from vibes_eval.toy.variants import FACTORY_VERSION, VARIANTS

    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant {unknown[0]!r}; known: {', '.join(VARIANTS)}")
    zoo = build_zoo(seed, log, bars)
    for name in variants:
        paths = write_llava_next_repo(zoo / name, Path(out) / name)
        for layout in ("pad", "anyres_max"):
            marker = {"variant": name, "factory_version": FACTORY_VERSION, "seed": seed, "format": "llava-next-repo", "layout": layout}
            (paths[layout] / TOY_MARKER).write_text(json.dumps(marker) + "\n")
    return json.loads((zoo / "zoo.json").read_text())
