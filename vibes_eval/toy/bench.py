"""Bench-size LLaVA checkpoints: llava-1.5's visual geometry, random weights, no training.

The toy zoo's checkpoints see 64 px images as 16 tokens, so their cost is mostly Python
overhead. Timing questions ("is `vibes-eval run` slower than the loop a user would write?")
need the shape that dominates real runs: a 336 px CLIP tower with patch 14, i.e. 577 vision
tokens of which 576 reach the LLM per image. `build_bench(out)` writes such a checkpoint in
seconds and never touches the zoo cache. Three sizes:

- `bench` (default, ~4 M parameters, CPU-friendly): CLIP 256 x 2 layers, Llama 256 x 2 layers.
- `bench-512` (27 M parameters): CLIP 512 x 4, Llama 512 x 4; the model work outweighs Python's
  start-up on a CPU.
- `llava-1.5-7b`: the real llava-1.5-7b shapes (CLIP-L/14-336, 24 x 1024; Llama 32 x 4096,
  intermediate 11008, vocabulary 32064), ~7 B parameters, 14 GB in bfloat16: build it on a GPU
  (`device="cuda"`), where random initialization takes seconds (bench/gpu.sh).

Both use the toy tokenizer (the shapes world's byte-level BPE; a 7b's extra vocabulary rows
decode to nothing) and the llava-1.5 chat template. The generation_config sets
`min_new_tokens == max_new_tokens`, so every generation decodes exactly that many tokens
whatever the random weights say: two timed runs do the same work. The default, 32, is
suites/shapes.yaml's max_new_tokens.
"""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["SIZES", "build_bench"]

_CLIP_336 = {"image_size": 336, "patch_size": 14}  # (336/14)^2 = 576 patches + CLS (dropped by strategy "default")

SIZES: dict[str, dict[str, int]] = {
    "bench": {**_CLIP_336, "vision_hidden": 256, "vision_intermediate": 1024, "vision_layers": 2, "vision_heads": 4,
              "text_hidden": 256, "text_intermediate": 688, "text_layers": 2, "text_heads": 4, "vocab_size": 0},
    "bench-512": {**_CLIP_336, "vision_hidden": 512, "vision_intermediate": 2048, "vision_layers": 4, "vision_heads": 8,
                  "text_hidden": 512, "text_intermediate": 1376, "text_layers": 4, "text_heads": 8, "vocab_size": 0},
    # config.json of llava-hf/llava-1.5-7b-hf (tests/fixtures/reference_configs) and its Vicuna-7B text model
    "llava-1.5-7b": {**_CLIP_336, "vision_hidden": 1024, "vision_intermediate": 4096, "vision_layers": 24, "vision_heads": 16,
                     "text_hidden": 4096, "text_intermediate": 11008, "text_layers": 32, "text_heads": 32, "vocab_size": 32064},
}
"""Geometry per size; vocab_size 0 means the toy tokenizer's own size."""

MAX_POSITIONS = 4096  # llava-1.5's; 576 image tokens + prompt + answer exceed the toy's 512


def _processor(seed: int, geometry: dict):
    from transformers import CLIPImageProcessor

    from vibes_eval.toy import assets

    proc = assets.build_processor(seed)
    size = geometry["image_size"]
    # the settings of llava-1.5-7b-hf's preprocessor_config.json (CLIP mean/std are the defaults)
    proc.image_processor = CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size})
    proc.patch_size = geometry["patch_size"]
    proc.tokenizer.model_max_length = MAX_POSITIONS
    return proc


def build_bench(out: Path, *, seed: int = 0, new_tokens: int = 32, size: str = "bench",
                device: str = "cpu", dtype: str | None = None) -> Path:
    """Write a bench checkpoint (random weights, no training) to `out`; return `out`.

    Args:
        out: the checkpoint folder to write (created; files in it are overwritten).
        seed: seeds the tokenizer's fit and the random weights.
        new_tokens: `min_new_tokens` and `max_new_tokens` of the saved generation_config:
            every generation decodes exactly this many tokens.
        size: a key of SIZES: "bench" (small, CPU) or "llava-1.5-7b" (the real shapes; GPU).
        device: where the weights are initialized ("cuda" makes a 7b take seconds, not minutes).
        dtype: the saved dtype (default float32 for "bench", bfloat16 otherwise).

    Returns:
        `out`, loadable offline with AutoProcessor + LlavaForConditionalGeneration.
    """
    import torch
    import transformers
    from transformers import GenerationConfig, LlavaForConditionalGeneration

    from vibes_eval.resources import TOY_MARKER

    if size not in SIZES:
        raise ValueError(f"unknown bench size {size!r}; known: {', '.join(SIZES)}")
    g = SIZES[size]
    dtype = dtype or ("float32" if size.startswith("bench") else "bfloat16")
    transformers.logging.set_verbosity_error()  # "requires torchvision ... falling back to PIL" is expected here
    transformers.utils.logging.disable_progress_bar()
    out = Path(out)
    processor = _processor(seed, g)
    tok = processor.tokenizer
    from vibes_eval.toy import assets

    config = assets.build_config(tok, {**g, "projection_dim": 768}, max_positions=MAX_POSITIONS, rms_norm_eps=1e-5)
    torch.manual_seed(seed)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(getattr(torch, dtype))  # a 7b initialized in float32 would take 28 GB
    try:
        with torch.device(device):
            model = LlavaForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    model.generation_config = GenerationConfig(
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        # min == max: EOS is masked until the limit, so the decode work is fixed
        min_new_tokens=new_tokens,
        max_new_tokens=new_tokens,
        do_sample=False,
    )
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor.save_pretrained(out)
    # the toy tokenizer only knows the shapes world: let `vibes-eval run` default to suites/shapes.yaml
    marker = {
        "variant": "bench" if size == "bench" else f"bench-{size}",
        "seed": seed,
        "random_weights": True,
        "new_tokens": new_tokens,
        "dtype": dtype,
        "parameters": sum(p.numel() for p in model.parameters()),
        "transformers": transformers.__version__,
        **g,
    }
    (out / TOY_MARKER).write_text(json.dumps(marker) + "\n")
    return out
