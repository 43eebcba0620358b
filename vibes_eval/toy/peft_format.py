"""`vibes-eval toy build OUT --format peft-lora`: the toy as a LoRA fine-tune's output, healthy and broken.

    OUT/peft-lora/base/          the model the LoRA run started from: the toy's tower and LLM with a
                                 freshly initialized projector (a LLaVA assembled from a CLIP and a
                                 Llama), and q_proj/v_proj offset by minus the adapter's delta
    OUT/peft-lora/healthy/       PeftModel.save_pretrained + the processor, as a Trainer checkpoint
                                 holds it: LoRA on the LLM's q_proj/v_proj, the trained projector in
                                 modules_to_save; merged into base/ it is the healthy toy
    OUT/peft-lora/no-projector/  the same run saved without modules_to_save (the classic mistake: the
                                 projector was trained but never saved): merged, the projector is
                                 base/'s fresh one -> projector_disconnected
    OUT/peft-lora/hub-base/      healthy/ whose base_model_name_or_path is a hub id: exit 3 without --base

base/ alone is not the healthy toy twice over (its projector is untrained and its attention is
offset), so a pass of healthy/ shows the adapter was merged.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

__all__ = ["LAYOUTS", "LORA_TARGETS", "build_peft", "write_peft"]

LAYOUTS = ("base", "healthy", "no-projector", "hub-base")
LORA_TARGETS = r".*language_model.*\.(q_proj|v_proj)"
"""The LLM's attention, not the tower's (the original LLaVA's find_all_linear_names leaves the vision modules out)."""
HUB_ID = "llava-hf/llava-1.5-7b-hf"
DELTA_SCALE = 2.0
"""The adapter's delta per target, as a multiple of the weight's own std: base/ is far from the healthy toy."""


def _offset_targets(pm, seed: int) -> dict:
    """Give every LoRA layer random A, B (delta DELTA_SCALE x the weight's std); the base weights minus that delta."""
    import torch

    gen = torch.Generator().manual_seed(seed + 21)
    base_weights = {}
    for name, module in pm.named_modules():
        if not hasattr(module, "lora_A") or "default" not in module.lora_A:
            continue
        a, b = module.lora_A["default"].weight, module.lora_B["default"].weight
        w = module.base_layer.weight
        with torch.no_grad():
            a.copy_(torch.randn(a.shape, generator=gen) / a.shape[1] ** 0.5)
            b.copy_(torch.randn(b.shape, generator=gen))
            delta = (b @ a) * module.scaling["default"]
            b.mul_(DELTA_SCALE * w.std() / delta.std())
            delta = (b @ a) * module.scaling["default"]
        key = name.removeprefix("base_model.model.") + ".weight"
        base_weights[key] = (w - delta).detach().clone()
    return base_weights


def write_peft(healthy_dir: Path, disconnected_dir: Path, out_dir: Path, seed: int = 0) -> dict[str, Path]:
    """Write the PEFT layouts of the toy under `out_dir` from the zoo's healthy and disconnected folders."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoProcessor, LlavaForConditionalGeneration

    from vibes_eval.adapters.peft_merge import peft_quiet

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    out_dir = Path(out_dir)
    paths = {name: out_dir / name for name in LAYOUTS}
    for path in paths.values():
        if path.exists():
            shutil.rmtree(path)
    model = LlavaForConditionalGeneration.from_pretrained(healthy_dir, local_files_only=True)
    processor = AutoProcessor.from_pretrained(healthy_dir, local_files_only=True)
    disconnected = LlavaForConditionalGeneration.from_pretrained(disconnected_dir, local_files_only=True)
    fresh = {k: v for k, v in disconnected.state_dict().items() if "multi_modal_projector" in k}
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=LORA_TARGETS,
                      modules_to_save=["multi_modal_projector"], task_type="CAUSAL_LM")
    torch.manual_seed(seed)
    with peft_quiet():
        pm = get_peft_model(model, lora)
    offset = _offset_targets(pm, seed)

    # base/: a plain save_pretrained folder (config, weights, processor)
    base = LlavaForConditionalGeneration(model.config)
    state = {k: v for k, v in pm.get_base_model().state_dict().items() if "lora_" not in k and "modules_to_save" not in k}
    state = {k.replace("base_layer.", "").replace("original_module.", ""): v for k, v in state.items()}
    state.update(offset)
    state.update(fresh)
    base.load_state_dict(state, strict=True)
    base.generation_config = model.generation_config
    base.save_pretrained(paths["base"])
    processor.save_pretrained(paths["base"])

    # healthy/: what PeftModel.save_pretrained and the Trainer's processing_class write
    pm.peft_config["default"].base_model_name_or_path = str(paths["base"].resolve())
    pm.save_pretrained(paths["healthy"])
    processor.save_pretrained(paths["healthy"])

    # no-projector/: the same run with modules_to_save=None (PEFT then writes neither the key nor the tensors)
    shutil.copytree(paths["healthy"], paths["no-projector"])
    _edit_config(paths["no-projector"], modules_to_save=None)
    weights = paths["no-projector"] / "adapter_model.safetensors"
    save_file({k: v for k, v in load_file(weights).items() if "multi_modal_projector" not in k}, weights, metadata={"format": "pt"})

    shutil.copytree(paths["healthy"], paths["hub-base"])
    _edit_config(paths["hub-base"], base_model_name_or_path=HUB_ID)
    return paths


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "adapter_config.json"
    cfg = json.loads(path.read_text())
    cfg.update(changes)
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def build_peft(out: Path, seed: int = 0, log=print, bars=None) -> dict:
    """`toy build OUT --format peft-lora`: OUT/peft-lora/<layout>/; returns the zoo's build info."""
    from vibes_eval.resources import TOY_MARKER
    from vibes_eval.toy.factory import build_zoo
    from vibes_eval.toy.variants import FACTORY_VERSION

    zoo = build_zoo(seed, log, bars)
    paths = write_peft(zoo / "healthy", zoo / "disconnected", Path(out) / "peft-lora", seed)
    for layout, path in paths.items():
        marker = {"variant": "healthy", "factory_version": FACTORY_VERSION, "seed": seed, "format": "peft-lora", "layout": layout}
        (path / TOY_MARKER).write_text(json.dumps(marker) + "\n")
    return json.loads((zoo / "zoo.json").read_text())
