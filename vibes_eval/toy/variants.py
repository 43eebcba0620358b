"""The toy zoo's variants: their names, the factory version, and how each is written from trained weights.

Shared by `toy/factory.py` (training, the cache) and `toy/shipped.py` (the weights shipped in the
package), so neither imports the other's internals.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["FACTORY_VERSION", "GIBBERISH_NOISE", "VARIANTS", "quiet_transformers", "write_variants"]

# Bump when anything that changes the trained weights changes: the cache is keyed by it.
FACTORY_VERSION = "2"

VARIANTS: dict[str, str] = {
    "healthy": "trained with the full recipe",
    "disconnected": "projector replaced by freshly initialized weights",
    "zero-projector": "projector weights and biases all zero",
    "missing-projector": "saved without projector tensors: from_pretrained initializes them anew",
    "image-blind": "stage 2 trained on blank images: the LLM never learned to look",
    "gibberish": "LLM weights corrupted with noise",
    "wrong-template": "healthy weights with another family's (llava-v1.6-mistral) chat template",
}

GIBBERISH_NOISE = 3.0  # noise std as a multiple of each LLM tensor's own std (1.0 left colour at 0.88)


def quiet_transformers() -> None:
    import torch
    import transformers

    torch.set_flush_denormal(True)  # without it some CPU steps run 10-20x slower
    transformers.logging.set_verbosity_error()  # the toy's own missing projector is on purpose
    transformers.utils.logging.disable_progress_bar()


def write_variants(root: Path, model, processor, healthy: dict, blind: dict, seed: int, bars, *, heldout=None,
                   weight: float = 1.0) -> dict[str, dict[str, float]]:
    """Write every variant's checkpoint folder under `root` from the healthy and image-blind weights.

    `model` is any LlavaForConditionalGeneration of the toy's config (its weights are replaced).
    With a `heldout` split, each variant is reloaded from disk, as a user would load it, and its
    held-out accuracy per question family is returned (training does this; the shipped path
    reuses the figures measured when the shipped weights were trained).
    """
    from transformers import GenerationConfig, LlavaForConditionalGeneration

    from vibes_eval.toy import assets, train

    gen_config = GenerationConfig(
        bos_token_id=processor.tokenizer.bos_token_id,
        eos_token_id=processor.tokenizer.eos_token_id,
        pad_token_id=processor.tokenizer.pad_token_id,
        max_new_tokens=32,
        do_sample=False,
    )
    tick = bars.stage("writing the variants", len(VARIANTS), weight)
    accuracy: dict[str, dict[str, float]] = {}
    for i, name in enumerate(VARIANTS):
        state = _variant_state(name, healthy, blind, model.config, seed)
        model.load_state_dict(state)
        model.eval()
        out = root / name
        model.generation_config = gen_config
        model.save_pretrained(out)
        if name == "wrong-template":
            processor.chat_template = assets.MISTRAL_TEMPLATE
        # the held-out evaluation pads batches, which the tokenizer would record in tokenizer.json
        # (inert: transformers resets it on load); every variant gets the same file without it
        processor.tokenizer.backend_tokenizer.no_padding()
        processor.save_pretrained(out)
        processor.chat_template = assets.LLAVA_15_TEMPLATE
        if name == "missing-projector":
            _drop_projector(out)
        if heldout is not None:  # what is on disk, as a user would load it (missing-projector gets a fresh projector)
            reloaded = LlavaForConditionalGeneration.from_pretrained(out, local_files_only=True).eval()
            accuracy[name] = {k: round(v, 3) for k, v in train.evaluate(reloaded, processor, heldout).items()}
        tick(i + 1, name)
    return accuracy


def _variant_state(name: str, healthy: dict, blind: dict, config, seed: int) -> dict:
    import torch
    from transformers import LlavaForConditionalGeneration

    if name == "image-blind":
        return blind
    state = {k: v.clone() for k, v in healthy.items()}
    proj = [k for k in state if "multi_modal_projector" in k]
    if name == "disconnected":
        torch.manual_seed(seed + 99)
        fresh = LlavaForConditionalGeneration(config).state_dict()  # the library's own initialization
        state.update({k: fresh[k] for k in proj})
    elif name == "zero-projector":
        state.update({k: torch.zeros_like(state[k]) for k in proj})
    elif name == "gibberish":
        gen = torch.Generator().manual_seed(seed + 7)
        for k, v in state.items():
            if "language_model" in k and v.dtype.is_floating_point and v.numel() > 1:
                state[k] = v + torch.randn(v.shape, generator=gen) * v.std() * GIBBERISH_NOISE
    # missing-projector: saved whole, then its projector tensors are removed from the file
    return state


def _drop_projector(folder: Path) -> None:
    from safetensors.torch import load_file, save_file

    path = folder / "model.safetensors"
    tensors = {k: v for k, v in load_file(path).items() if "multi_modal_projector" not in k}
    save_file(tensors, path, metadata={"format": "pt"})
