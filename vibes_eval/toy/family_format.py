"""`vibes-eval toy build OUT --format vipllava`: the toy as a ViP-LLaVA checkpoint, healthy and broken.

    OUT/vipllava/healthy/       VipLlavaForConditionalGeneration: the toy's tower and LLM, its projector
                                behind ViP-LLaVA's layer norm (vision_feature_layers [-2])
    OUT/vipllava/disconnected/  the same with a freshly initialized ViP projector

ViP-LLaVA normalizes the tower features before its MLP. The toy's MLP was trained on raw features,
so the converted layer norm divides by sqrt(var + eps) with eps = 1e8 and multiplies by sqrt(eps):
it only centres each token (x - mean(x)), and linear_1's bias takes back the mean over the shapes
images (measured: the projected tokens differ from the llava toy's by about 4%; the converted
toy passes the shapes suite). The processor is the toy's (ViP-LLaVA ships LlavaProcessor).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

__all__ = ["EPS", "build_family", "write_vipllava"]

EPS = 1e8
LAYOUTS = ("healthy", "disconnected")


def _vip_config(c):
    from transformers import VipLlavaConfig

    return VipLlavaConfig(vision_config=c.vision_config.to_dict(), text_config=c.text_config.to_dict(),
                          image_token_index=c.image_token_index, projector_hidden_act=c.projector_hidden_act,
                          projector_layernorm_eps=EPS, vision_feature_layers=[c.vision_feature_layer],
                          image_seq_length=c.image_seq_length, pad_token_id=c.pad_token_id, tie_word_embeddings=False)


def _feature_mean(model, processor) -> float:
    """The mean over tokens and channels of the toy's projector input on the shapes suite's images."""
    import torch
    from PIL import Image

    from vibes_eval.resources import suites_dir

    images = []
    for p in sorted((suites_dir() / "images" / "shapes").glob("*.png")):
        with Image.open(p) as im:
            images.append(im.convert("RGB"))
    pv = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hs = model.model.vision_tower(pv, output_hidden_states=True).hidden_states[model.config.vision_feature_layer][:, 1:]
    return float(hs.mean())


def write_vipllava(healthy_dir: Path, out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write the toy's healthy checkpoint as ViP-LLaVA (healthy/ and disconnected/) under `out_dir`."""
    import torch
    import transformers
    from transformers import AutoProcessor, LlavaForConditionalGeneration, VipLlavaForConditionalGeneration

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    model = LlavaForConditionalGeneration.from_pretrained(healthy_dir, local_files_only=True).eval()
    processor = AutoProcessor.from_pretrained(healthy_dir, local_files_only=True)
    config = _vip_config(model.config)
    state = dict(model.state_dict())
    p = "model.multi_modal_projector."
    state[p + "linear_1.bias"] = state[p + "linear_1.bias"] + _feature_mean(model, processor) * state[p + "linear_1.weight"].sum(1)
    width = config.vision_config.hidden_size
    state[p + "projector_layernorm.weight"] = torch.full((width,), EPS ** 0.5)
    state[p + "projector_layernorm.bias"] = torch.zeros(width)
    torch.manual_seed(seed + 99)
    fresh = VipLlavaForConditionalGeneration(config).state_dict()  # the library's own initialization
    paths = {name: Path(out_dir) / name for name in LAYOUTS}
    for name, path in paths.items():
        if path.exists():
            shutil.rmtree(path)
        vip = VipLlavaForConditionalGeneration(config).eval()
        weights = state if name == "healthy" else {**state, **{k: v for k, v in fresh.items() if k.startswith(p)}}
        vip.load_state_dict(weights, strict=True)
        vip.generation_config = model.generation_config
        vip.save_pretrained(path)
        processor.save_pretrained(path)
    return paths


def build_family(out: Path, seed: int = 0, log=print, bars=None) -> dict:
    """`toy build OUT --format vipllava`: OUT/vipllava/<variant>/; returns the zoo's build info."""
    from vibes_eval.resources import TOY_MARKER
    from vibes_eval.toy.factory import build_zoo
    from vibes_eval.toy.variants import FACTORY_VERSION

    zoo = build_zoo(seed, log, bars)
    paths = write_vipllava(zoo / "healthy", Path(out) / "vipllava", seed)
    for variant, path in paths.items():
        marker = {"variant": variant, "factory_version": FACTORY_VERSION, "seed": seed, "format": "vipllava"}
        (path / TOY_MARKER).write_text(json.dumps(marker) + "\n")
    return json.loads((zoo / "zoo.json").read_text())
