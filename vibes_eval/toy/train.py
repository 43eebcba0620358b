"""Training the toy LLaVA with the LLaVA recipe, at toy scale, on the CPU.

Phases, each short:
  0. vision: the tiny CLIP tower learns a dense objective (every patch token predicts the
     colour and kind of the shape covering it, and the scene's shape count). A random
     frozen tower leaves shape at chance at this scale; a contrastive objective stalls.
  1. text: the Llama learns the dialogue with the scene written as text where the image
     will go ("USER: a red circle on the left\\nWhat color ...? ASSISTANT: red").
  2. stage 1 (alignment): projector only, towers frozen, captioning loss on images.
  3. stage 2 (instruction tuning): projector + LLM on every question family, refusals included.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from vibes_eval.toy import world

__all__ = [
    "Batchable",
    "Split",
    "encode",
    "evaluate",
    "generate_answers",
    "make_split",
    "pretrain_vision",
    "prompt_text",
    "subset",
    "train_lm",
]


def prompt_text(question: str, context: str = "<image>") -> str:
    """The llava-1.5-hf rendering of one user turn (asserted equal to the chat template in tests)."""
    return f"USER: {context}\n{question} ASSISTANT:"


@dataclass
class Split:
    """Scenes, their pixel values, and every (scene, QA) example asked about them."""

    scenes: list
    pixels: object  # torch.FloatTensor [n_scenes, 3, H, W]
    examples: list  # list[tuple[int, world.QA]]


@dataclass
class Batchable:
    """Right-padded token ids and labels for a list of examples."""

    input_ids: object
    labels: object
    attention_mask: object
    image_index: object
    lengths: object


def make_split(processor, seed: int, n_scenes: int, *, blank: bool = False) -> Split:
    """Draw `n_scenes` scenes from `seed` and every question about each.

    Args:
        processor: the toy LlavaProcessor (its image processor makes the pixel values).
        seed: the split's seed; training and held-out splits use different seeds.
        n_scenes: how many scenes.
        blank: replace every image by the blank background (the `image-blind` variant).
    """
    rng = random.Random(seed)
    scenes = [world.sample_scene(rng) for _ in range(n_scenes)]
    images = [world.blank_image() if blank else world.render(s) for s in scenes]
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    examples = [(i, qa) for i, s in enumerate(scenes) for qa in world.qa_pairs(s, rng)]
    return Split(scenes, pixels, examples)


def encode(processor, split: Split, *, text_context: bool = False) -> Batchable:
    """Tokenize every example of `split` as prompt + answer + eos, loss on the answer only.

    With `text_context`, the scene's caption stands where the image tokens would (phase 1).
    """
    import torch

    tok = processor.tokenizer
    n_image = _image_token_count(processor)
    prompts = []
    for i, qa in split.examples:
        ctx = split.scenes[i].caption() if text_context else "<image>" * n_image
        prompts.append(prompt_text(qa.question, ctx))
    answers = [" " + qa.answer + tok.eos_token for _, qa in split.examples]
    p_ids = tok(prompts)["input_ids"]
    a_ids = tok(answers, add_special_tokens=False)["input_ids"]
    length = max(len(p) + len(a) for p, a in zip(p_ids, a_ids))
    n = len(p_ids)
    ids = torch.full((n, length), tok.pad_token_id, dtype=torch.long)
    labels = torch.full((n, length), -100, dtype=torch.long)
    mask = torch.zeros((n, length), dtype=torch.long)
    lengths = torch.zeros(n, dtype=torch.long)
    for r, (p, a) in enumerate(zip(p_ids, a_ids)):
        seq = p + a
        ids[r, : len(seq)] = torch.tensor(seq)
        labels[r, len(p) : len(seq)] = torch.tensor(a)
        mask[r, : len(seq)] = 1
        lengths[r] = len(seq)
    image_index = torch.tensor([i for i, _ in split.examples])
    return Batchable(ids, labels, mask, image_index, lengths)


def subset(data: Batchable, rows) -> Batchable:
    """The rows `rows` of `data`."""
    return Batchable(data.input_ids[rows], data.labels[rows], data.attention_mask[rows], data.image_index[rows], data.lengths[rows])


def _image_token_count(processor) -> int:
    size = processor.image_processor.crop_size["height"]
    return (size // processor.patch_size) ** 2 + processor.num_additional_image_tokens - 1


def _schedule(step: int, steps: int, lr: float, warmup: int) -> float:
    if step < warmup:
        return lr * (step + 1) / warmup
    t = (step - warmup) / max(1, steps - warmup)
    return lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


def _loop(params, steps: int, lr: float, warmup: int, loss_fn, seed: int, tick=None) -> float:
    import torch

    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0, betas=(0.9, 0.98))
    gen = torch.Generator().manual_seed(seed)
    last = float("nan")
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = _schedule(step, steps, lr, warmup)
        loss = loss_fn(gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        last = 0.9 * last + 0.1 * loss.item() if step else loss.item()
        if tick is not None:
            tick(step + 1, f"loss {last:.3f}")
    return last


def _patch_targets(split: Split, patch: int):
    """Dense targets for the vision tower, shape [n_scenes, n_patches, 13].

    Local (0-1): colour and kind of the shape covering most of the patch (0 = background).
    Global (2-12), the same at every patch: colour and kind on the left and on the right, the
    count, and per kind its colour and side (0 = absent). The global part puts the whole scene
    into every patch token as slots: a 4-layer LLM trained on a few thousand examples cannot
    bind a colour to a shape across raster positions by itself (two-shape "what color is the
    circle?" stayed at chance without slots, 0.65 with side slots only).
    """
    import numpy as np
    import torch

    colors = list(world.COLORS)
    side = world.IMAGE_SIZE // patch
    out = np.zeros((len(split.scenes), side * side, 13), dtype=np.int64)
    for i, scene in enumerate(split.scenes):
        cover = np.stack([np.asarray(m, dtype=np.float32) / 255 for m in world.masks(scene)])
        cover = cover.reshape(len(scene.shapes), side, patch, side, patch).sum(axis=(2, 4)).reshape(len(scene.shapes), -1)
        best = cover.argmax(0)
        for p in range(side * side):
            if cover[best[p], p] >= patch * patch * 0.08:
                shape = scene.shapes[best[p]]
                out[i, p, 0] = 1 + colors.index(shape.color)
                out[i, p, 1] = 1 + world.KINDS.index(shape.kind)
        for j, name in enumerate(world.SIDES):
            shape = scene.on(name)
            if shape is not None:
                out[i, :, 2 + 2 * j] = 1 + colors.index(shape.color)
                out[i, :, 3 + 2 * j] = 1 + world.KINDS.index(shape.kind)
        out[i, :, 6] = len(scene.shapes) - 1
        for k, kind in enumerate(world.KINDS):
            shape = next((s for s in scene.shapes if s.kind == kind), None)  # the left one if two
            if shape is not None:
                out[i, :, 7 + 2 * k] = 1 + colors.index(shape.color)
                out[i, :, 8 + 2 * k] = 1 + world.SIDES.index(shape.side)
    return torch.from_numpy(out)


def pretrain_vision(model, split: Split, *, steps: int, batch: int, lr: float, seed: int, tick=None) -> float:
    """Phase 0: dense per-patch objective on the layer the projector reads; `tick(step, note)` after each step."""
    import torch

    tower = model.model.vision_tower
    cfg = model.config
    hidden = cfg.vision_config.hidden_size
    torch.manual_seed(seed)
    sizes = [1 + len(world.COLORS), 1 + len(world.KINDS)] * 3 + [2] + [1 + len(world.COLORS), 1 + len(world.SIDES)] * 3
    heads = torch.nn.ModuleList([torch.nn.Linear(hidden, n) for n in sizes])
    targets = _patch_targets(split, cfg.vision_config.patch_size)
    ce = torch.nn.functional.cross_entropy

    def loss_fn(gen):
        idx = torch.randint(0, len(split.scenes), (batch,), generator=gen)
        out = tower(split.pixels[idx], output_hidden_states=True)
        feats = out.hidden_states[cfg.vision_feature_layer][:, 1:]  # drop CLS, as strategy "default" does
        t = targets[idx]
        return sum(ce(h(feats).flatten(0, 1), t[..., j].flatten()) for j, h in enumerate(heads))

    params = list(tower.parameters()) + list(heads.parameters())
    return _loop(params, steps, lr, steps // 10, loss_fn, seed, tick)


def _lm_loss_fn(model, data: Batchable, pixels, batch: int):
    import torch

    def loss_fn(gen):
        idx = torch.randint(0, data.input_ids.shape[0], (batch,), generator=gen)
        width = int(data.lengths[idx].max())
        kwargs = {}
        if pixels is not None:
            kwargs["pixel_values"] = pixels[data.image_index[idx]]
        out = model(
            input_ids=data.input_ids[idx, :width],
            attention_mask=data.attention_mask[idx, :width],
            labels=data.labels[idx, :width],
            **kwargs,
        )
        return out.loss

    return loss_fn


def train_lm(model, params, data: Batchable, pixels, *, steps: int, batch: int, lr: float, seed: int, tick=None) -> float:
    """Phases 1-3: next-token loss on the answers; only `params` are trained; `tick(step, note)` after each step."""
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    loss = _loop(params, steps, lr, max(1, steps // 10), _lm_loss_fn(model, data, pixels, batch), seed, tick)
    for p in model.parameters():
        p.requires_grad_(True)
    return loss


def generate_answers(model, processor, split: Split, indices, *, pixels=None, max_new_tokens: int = 24, batch: int = 128):
    """Greedy answers for the examples `indices` of `split` (left-padded batches)."""
    import torch

    tok = processor.tokenizer
    n_image = _image_token_count(processor)
    pixels = split.pixels if pixels is None else pixels
    answers = []
    with torch.inference_mode():
        for start in range(0, len(indices), batch):
            chunk = indices[start : start + batch]
            prompts = [prompt_text(split.examples[i][1].question, "<image>" * n_image) for i in chunk]
            enc = tok(prompts, return_tensors="pt", padding=True)
            pv = pixels[torch.tensor([split.examples[i][0] for i in chunk])]
            out = model.generate(
                **enc, pixel_values=pv, max_new_tokens=max_new_tokens, do_sample=False,
                pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
            )
            answers += tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [a.strip() for a in answers]


def evaluate(
    model,
    processor,
    split: Split,
    *,
    pixels=None,
    families=("color", "shape", "count", "position", "yesno", "reasoning", "refusal", "caption"),
) -> dict[str, float]:
    """Exact-match accuracy per question family on `split` (a held-out split, never training items)."""
    out = {}
    for fam in families:
        idx = [i for i, (_, qa) in enumerate(split.examples) if qa.family == fam]
        answers = generate_answers(model, processor, split, idx, pixels=pixels)
        right = [a.lower().rstrip(".") == split.examples[i][1].answer.lower().rstrip(".") for a, i in zip(answers, idx)]
        out[fam] = sum(right) / max(1, len(right))
    return out
