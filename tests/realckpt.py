"""Shrunken random-weight checkpoints built from the real files of published LLaVA models.

The tokenizer, processor, chat-template and config files are the real ones (tests/fixtures/
reference_configs/, see each folder's PROVENANCE.txt); only the widths and depths are shrunk
(128 wide, 2 layers) so a folder builds and runs in seconds. The visual geometry stays real:
CLIP 336 px / patch 14 (576 tokens per view), SigLIP 384 px / patch 14 (729), the real AnyRes
pinpoints. Random weights: a run must flag these as gibberish / image-blind (exit 1).

Only llava-1.5's tokenizer.model ships here (0.5 MB; the 3.9 MB tokenizer.json is not needed:
transformers builds the same tokenizer from it). The NeXT-Mistral and OneVision folders use it as
a stand-in for their own tokenizers (Mistral's is the same kind; Qwen2's 150k-entry BPE would
make the fixture 40x bigger), with OneVision's special tokens added.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

REF = Path(__file__).resolve().parent / "fixtures" / "reference_configs"
LLAVA15 = REF / "llava-1.5-7b-hf"
NEXT = REF / "llava-v1.6-mistral-7b-hf_RECONSTRUCTED"
ONEVISION = REF / "llava-onevision-qwen2-0.5b-ov-hf_RECONSTRUCTED"
ORIGINAL15 = REF / "liuhaotian_llava-v1.5-7b"
ORIGINAL16 = REF / "liuhaotian_llava-v1.6-vicuna-7b_TRANSCRIBED"
TOKENIZER_FILES = ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json")
SMALL = {"hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2, "num_attention_heads": 4}
FAMILIES = ("llava", "llava_next", "llava_onevision", "llava_interleave")


def _json(path: Path) -> dict:
    return json.loads(path.read_text())


def _write(path: Path, data: dict) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _shrink(cfg: dict) -> dict:
    out = json.loads(json.dumps(cfg))
    out["text_config"].update(SMALL, num_key_value_heads=4)
    out["vision_config"].update(SMALL)
    out["vision_config"].pop("projection_dim", None)
    return out


def _save_random(config_dict: dict, dest: Path, seed: int = 0) -> None:
    """Random weights for `config_dict` saved in `dest`; config.json is then the given (hub-era) dict."""
    import torch
    import transformers

    arch = config_dict["architectures"][0]
    cfg_cls = transformers.AutoConfig.for_model(config_dict["model_type"]).__class__
    config = cfg_cls(**{k: v for k, v in config_dict.items() if k != "model_type"})
    torch.manual_seed(seed)
    model = getattr(transformers, arch)(config)
    model.save_pretrained(dest)
    _write(dest / "config.json", config_dict)  # the real file's shape, not 5.x's rewrite


def build_hf(family: str, dest: Path) -> Path:
    """A transformers-native folder of `family` (llava, llava_next, llava_onevision) with real metadata."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copy(LLAVA15 / name, dest / name)
    if family == "llava":
        files = ("preprocessor_config.json", "processor_config.json", "chat_template.json", "chat_template.jinja", "generation_config.json")
        for name in files:
            shutil.copy(LLAVA15 / name, dest / name)
        cfg = _shrink(_json(LLAVA15 / "config.json"))
    elif family == "llava_next":
        for name in ("preprocessor_config.json", "processor_config.json", "chat_template.json"):
            shutil.copy(NEXT / name, dest / name)
        tcfg = _json(dest / "tokenizer_config.json")
        _write(dest / "tokenizer_config.json", {**tcfg, "processor_class": "LlavaNextProcessor"})
        cfg = _shrink(_json(NEXT / "config.json"))
    elif family == "llava_onevision":
        cfg = _onevision_files(dest)
    elif family == "llava_interleave":
        cfg = _interleave_files(dest)
    else:
        raise ValueError(family)
    _save_random(cfg, dest)
    return dest


def _onevision_files(dest: Path) -> dict:
    """OneVision's processor files and chat template; its special tokens added to the stand-in tokenizer."""
    for name in ("preprocessor_config.json", "processor_config.json", "chat_template.json", "generation_config.json"):
        shutil.copy(ONEVISION / name, dest / name)
    added = {"<image>": 32000, "<pad>": 32001, "<video>": 32002, "<|im_start|>": 32003, "<|im_end|>": 32004}
    _write(dest / "added_tokens.json", added)
    tcfg = _json(dest / "tokenizer_config.json")
    decoder = tcfg["added_tokens_decoder"]
    for text, i in added.items():
        decoder.setdefault(str(i), {**decoder["32000"], "content": text})
    tcfg.update(processor_class="LlavaOnevisionProcessor", eos_token="<|im_end|>",
                extra_special_tokens={"image_token": "<image>", "video_token": "<video>"}, video_token="<video>")
    _write(dest / "tokenizer_config.json", tcfg)
    gen = _json(dest / "generation_config.json")
    _write(dest / "generation_config.json", {**gen, "bos_token_id": 1, "eos_token_id": 32004, "pad_token_id": 32001})
    cfg = _shrink(_json(ONEVISION / "config.json"))
    cfg["text_config"].update(vocab_size=32064, bos_token_id=1, eos_token_id=32004, num_key_value_heads=2)
    cfg.update(image_token_index=32000, video_token_index=32002)
    return cfg


def _interleave_files(dest: Path) -> dict:
    """llava-interleave-qwen-0.5b-hf's shape: plain Llava with a SigLIP tower (384 px, patch 14, no CLS:
    729 tokens, strategy full, num_additional_image_tokens 0) and OneVision's image settings and template.
    No file of it is in the reference set: assembled from llava-1.5's and OneVision's."""
    _onevision_files(dest)
    (dest / "preprocessor_config.json").unlink()
    image = _json(ONEVISION / "preprocessor_config.json")
    for key in ("image_grid_pinpoints", "do_pad"):
        image.pop(key)
    image.update(image_processor_type="SiglipImageProcessor", processor_class="LlavaProcessor")
    _write(dest / "preprocessor_config.json", image)
    _write(dest / "processor_config.json", {**_json(LLAVA15 / "processor_config.json"), "num_additional_image_tokens": 0,
                                            "vision_feature_select_strategy": "full"})
    tcfg = _json(dest / "tokenizer_config.json")
    _write(dest / "tokenizer_config.json", {**tcfg, "processor_class": "LlavaProcessor"})
    ov = _shrink(_json(ONEVISION / "config.json"))
    cfg = _shrink(_json(LLAVA15 / "config.json"))
    cfg["text_config"] = {**ov["text_config"], "vocab_size": 32064, "bos_token_id": 1, "eos_token_id": 32004, "num_key_value_heads": 2}
    cfg.update(vision_config=ov["vision_config"], vision_feature_select_strategy="full", vision_feature_layer=-1,
               image_token_index=32000, tie_word_embeddings=True)
    return cfg


def drop_processor_config(folder: Path) -> Path:
    """The folder as transformers < 4.45 saved it: no processor_config.json (no patch_size for the processor)."""
    (folder / "processor_config.json").unlink()
    for name in ("tokenizer_config.json", "preprocessor_config.json"):
        data = _json(folder / name)
        for key in ("image_token", "extra_special_tokens"):
            data.pop(key, None)
        _write(folder / name, data)
    return folder


def write_suite(folder: Path, n: int = 4, size: tuple[int, int] = (200, 150)) -> Path:
    """A small suite of `n` drawn images (distinct colours and shapes) with short references."""
    import yaml

    colors = ["red", "blue", "green", "yellow", "purple", "orange"]
    (folder / "images").mkdir(parents=True, exist_ok=True)
    prompts = []
    for i in range(n):
        im = Image.new("RGB", size, "white")
        d = ImageDraw.Draw(im)
        box = (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4)
        (d.ellipse if i % 2 else d.rectangle)(box, fill=colors[i % len(colors)])
        im.save(folder / "images" / f"{i}.png")
        prompts.append({"id": f"color-{i}", "category": "vqa", "image": f"images/{i}.png",
                        "question": "What color is the shape?", "expect": {"any": [colors[i % len(colors)]]},
                        "reference": colors[i % len(colors)]})
    # one long reference: a short one then sits in a left-padded batch beside it (the NeXT scoring trap)
    prompts[-1]["reference"] = f"The shape in the middle of the picture is {colors[(n - 1) % len(colors)]}, on a white background."
    suite = {"name": "real-files", "defaults": {"max_new_tokens": 8},
             "gate": {"max_fail": 0, "max_warn": 10, "fail_on": ["projector_disconnected", "image_blind", "gibberish"]},
             "prompts": prompts}
    path = folder / "suite.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


# -- the original LLaVA repo's layout (liuhaotian/llava-v1.5-7b, llava-v1.6-vicuna-7b) ---------------
def build_tower(dest: Path, seed: int = 1) -> Path:
    """A shrunken CLIP tower with clip-vit-large-patch14-336's geometry and image processor (336 px, patch 14)."""
    import torch
    import transformers

    cfg = transformers.CLIPVisionConfig(image_size=336, patch_size=14, **SMALL)
    torch.manual_seed(seed)
    transformers.CLIPVisionModel(cfg).save_pretrained(dest)
    shutil.copy(LLAVA15 / "preprocessor_config.json", dest / "preprocessor_config.json")
    return dest


def build_original(version: str, dest: Path, seed: int = 0) -> Path:
    """An original-format folder (`1.5`: pad, `1.6`: anyres) with the real config, tokenizer.model only."""
    import torch
    import transformers
    from safetensors.torch import save_file

    dest.mkdir(parents=True, exist_ok=True)
    ref = ORIGINAL15 if version == "1.5" else ORIGINAL16
    cfg = _json(ref / "config.json")
    cfg.update(SMALL, num_key_value_heads=4, mm_hidden_size=SMALL["hidden_size"])
    _write(dest / "config.json", cfg)
    shutil.copy(LLAVA15 / "tokenizer.model", dest / "tokenizer.model")
    for name in ("tokenizer_config.json", "special_tokens_map.json", "generation_config.json"):
        if (ORIGINAL15 / name).is_file():
            shutil.copy(ORIGINAL15 / name, dest / name)
    torch.manual_seed(seed)
    text = transformers.LlamaConfig(**{k: cfg[k] for k in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
                                                           "num_attention_heads", "num_key_value_heads")})
    state = {k: v.contiguous() for k, v in transformers.LlamaForCausalLM(text).state_dict().items()}
    h = SMALL["hidden_size"]
    state.update({"model.mm_projector.0.weight": torch.randn(h, h) * 0.02, "model.mm_projector.0.bias": torch.zeros(h),
                  "model.mm_projector.2.weight": torch.randn(h, h) * 0.02, "model.mm_projector.2.bias": torch.zeros(h)})
    if version != "1.5":
        state["model.image_newline"] = torch.randn(h) * 0.02
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    return dest


def build_next_repo(dest: Path, tower_dest: Path, seed: int = 0) -> tuple[Path, Path]:
    """A LLaVA-NeXT-repo output shaped like lmms-lab/llava-onevision-qwen2-0.5b-ov: LlavaQwenForCausalLM
    (Qwen2, tied head) + mm_* keys, a SigLIP so400m/14-384-shaped tower, anyres_max_9, pinpoints
    "(1x1),...,(6x6)", mm_spatial_pool_*; shrunken random weights, the stand-in tokenizer."""
    import torch
    import transformers
    from safetensors.torch import save_file

    vision = transformers.SiglipVisionConfig(image_size=384, patch_size=14, vision_use_head=False, **SMALL)
    torch.manual_seed(seed + 1)
    transformers.SiglipVisionModel(vision).save_pretrained(tower_dest)
    image = _json(ONEVISION / "preprocessor_config.json")
    _write(tower_dest / "preprocessor_config.json", {k: v for k, v in image.items() if k not in ("image_grid_pinpoints", "do_pad")}
           | {"image_processor_type": "SiglipImageProcessor"})
    dest.mkdir(parents=True, exist_ok=True)
    text = {"vocab_size": 32000, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
            "max_position_embeddings": 32768, "tie_word_embeddings": True, "use_sliding_window": False, **SMALL}
    cfg = {"architectures": ["LlavaQwenForCausalLM"], "model_type": "llava", "bos_token_id": 151643, "eos_token_id": 151645,
           "hidden_act": "silu", **text, "image_aspect_ratio": "anyres_max_9", "image_crop_resolution": None,
           "image_grid_pinpoints": "(1x1),...,(6x6)", "image_split_resolution": None, "mm_hidden_size": SMALL["hidden_size"],
           "mm_newline_position": "grid", "mm_patch_merge_type": "spatial_unpad", "mm_projector_lr": None,
           "mm_projector_type": "mlp2x_gelu", "mm_resampler_type": None, "mm_spatial_pool_mode": "bilinear",
           "mm_spatial_pool_stride": 2, "mm_tunable_parts": "mm_vision_tower,mm_mlp_adapter,mm_language_model",
           "mm_use_im_patch_token": False, "mm_use_im_start_end": False, "mm_vision_select_feature": "patch",
           "mm_vision_select_layer": -2, "mm_vision_tower": "google/siglip-so400m-patch14-384", "mm_vision_tower_lr": 2e-06,
           "vision_tower_pretrained": None, "tokenizer_model_max_length": 32768, "tokenizer_padding_side": "right"}
    _write(dest / "config.json", cfg)
    for name in ("tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy((LLAVA15 if name == "tokenizer.model" else ORIGINAL15) / name, dest / name)
    qwen = transformers.Qwen2Config(**text)
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in transformers.Qwen2ForCausalLM(qwen).state_dict().items() if k != "lm_head.weight"}
    h = SMALL["hidden_size"]
    state.update({"model.mm_projector.0.weight": torch.randn(h, h) * 0.02, "model.mm_projector.0.bias": torch.zeros(h),
                  "model.mm_projector.2.weight": torch.randn(h, h) * 0.02, "model.mm_projector.2.bias": torch.zeros(h),
                  "model.image_newline": torch.randn(h) * 0.02})
    # OneVision trains the tower, so its weights are in the checkpoint, the last layer already dropped
    tower = transformers.SiglipVisionModel.from_pretrained(tower_dest).state_dict()
    last = f"encoder.layers.{vision.num_hidden_layers - 1}."
    state.update({f"model.vision_tower.vision_tower.{k}": v.clone() for k, v in tower.items() if last not in k and "head" not in k})
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    return dest, tower_dest
