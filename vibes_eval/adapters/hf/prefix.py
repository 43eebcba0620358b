"""Shared image prefixes for plain llava: each image is encoded once per run, and each
(template prefix + image) is prefilled once, its KV cache serving every generation and every
likelihood that starts with it.

In a llava prompt the image tokens come before the question (`USER: <image>\\n{q} ASSISTANT:`),
so the answer, the swapped-image variant of another prompt, and every reference scored under that
image share everything up to the last image token. The LLM's KV cache of that prefix is computed
once (`prefill`) and kept in a byte-bounded LRU. Generation copies each row's prefix into a
StaticCache (new tokens are written in place); likelihood rows that share a prefix are packed
into one sequence after it (a block-diagonal mask), so the prefix is read once for all of them.
Only the tails (question, answer cue, reference or generated tokens) are run per request. The
vision tower stops at the layer LLaVA reads.

Tokenization matches the processor's (which expands `<image>` to the model's count of image
tokens, then tokenizes the whole text): `split` tokenizes once with one image token and expands
that id. The projected image tokens enter through `inputs_embeds` (the LLM's embeddings with the
image rows replaced), which every transformers 5.x LLaVA class accepts (5.17 and 5.24 tested);
the cache keyword is read off the model's signature (`cache` from 5.2x, `past_key_values` before).
bench/prefix_check.py compares this path with the plain processor path on any machine.
"""

from __future__ import annotations

import hashlib
import inspect
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from vibes_eval.errors import ImageTokenMismatch
from vibes_eval.records import Request

__all__ = ["PrefixEngine", "Row"]

KV_BUDGET_BYTES = 4 << 30
"""Prefix KV caches kept at once (LRU; on a GPU at most a quarter of its free memory); llava-1.5-7b
in bf16 needs ~0.32 GB per image prefix, so a 10-image suite fits on an 80 GB card."""


@dataclass(frozen=True)
class Row:
    """One request cut at its last image token."""

    prefix: tuple[int, ...]
    digest: str
    tail: list[int]
    n_target: int = 0

    @property
    def key(self) -> tuple:
        return self.prefix, self.digest


class PrefixEngine:
    """Image features, prefix KV caches, and the batched generate/score that use them (plain llava only)."""

    def __init__(self, model, processor, render, *, batch_size: int, load_image, kv_budget: int = KV_BUDGET_BYTES):
        self.model, self.processor, self.render = model, processor, render
        self.batch_size, self.load_image, self.kv_budget = batch_size, load_image, kv_budget
        if model.device.type == "cuda":  # a quarter of what the GPU has free after loading, at most kv_budget
            import torch

            self.kv_budget = min(kv_budget, torch.cuda.mem_get_info(model.device)[0] // 4)
        self.tok = processor.tokenizer
        self.image_id = model.config.image_token_id
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        self._digests: dict[tuple[str, str], str] = {}
        self._pixels: dict[str, object] = {}
        self._features: dict[str, object] = {}
        self._kv: OrderedDict[tuple, object] = OrderedDict()
        self._kv_bytes = 0
        self._n_image: int | None = None
        self._tokens: dict[str, list[int]] = {}
        self.stats = {"prefills": 0, "prefill_hits": 0, "encodes": 0}

    # -- images ---------------------------------------------------------------------------
    def digest(self, image: Path | str, variant: str) -> str:
        """A hash of the pixels the model sees (every blank image of a suite is one image)."""
        key = (str(image), "blank" if variant == "blank" else "image")
        if key not in self._digests:
            pv = self.processor.image_processor([self.load_image(Path(image), variant)], return_tensors="pt")["pixel_values"]
            d = hashlib.sha1(pv.float().numpy().tobytes()).hexdigest()
            self._digests[key] = d
            self._pixels.setdefault(d, pv)
        return self._digests[key]

    def features(self, digests: list[str]) -> list:
        """Projected image tokens per digest, the vision tower and projector run once per image."""
        import torch

        cfg = self.model.config
        todo = [d for d in dict.fromkeys(digests) if d not in self._features]
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            pv = torch.cat([self._pixels[d] for d in chunk]).to(self.model.device, self.model.dtype)
            with torch.inference_mode(), self.tower_up_to_feature_layer() as layer:
                out = self.model.get_image_features(
                    pixel_values=pv,
                    vision_feature_layer=layer,
                    vision_feature_select_strategy=cfg.vision_feature_select_strategy,
                )
            feats = getattr(out, "pooler_output", out)
            self._features.update(zip(chunk, feats))
            self.stats["encodes"] += len(chunk)
        return [self._features[d] for d in digests]

    @contextmanager
    def tower_up_to_feature_layer(self):
        """The vision tower without the layers after the one LLaVA reads (`vision_feature_layer`), and
        the index of that layer in the shortened tower.

        llava-1.5 reads layer -2: its tower's last layer (1 of 24) is computed and thrown away by
        `get_image_features`; here it is not run. Restored on exit.
        """
        import torch

        layer = self.model.config.vision_feature_layer
        tower = getattr(getattr(self.model, "model", self.model), "vision_tower", None)
        found = (
            [(n, m) for n, m in tower.named_modules() if n.endswith("encoder.layers") and isinstance(m, torch.nn.ModuleList)]
            if tower is not None
            else []
        )
        if not isinstance(layer, int) or len(found) != 1:
            yield layer
            return
        name, layers = found[0]
        need = layer if layer >= 0 else len(layers) + 1 + layer  # hidden_states[0] is the embeddings
        if not 0 < need < len(layers):
            yield layer
            return
        parent = tower.get_submodule(name.rpartition(".")[0])
        parent.layers = layers[:need]
        try:
            yield need  # positive: transformers 5.2x captures only the selected hidden states, by index
        finally:
            parent.layers = layers

    def image_token_count(self) -> int:
        """Image tokens the processor inserts for one image (fixed for plain llava)."""
        from PIL import Image

        if self._n_image is None:
            enc = self.processor(text=[self.processor.image_token], images=[Image.new("RGB", (32, 32))], return_tensors="pt")
            self._n_image = int((enc["input_ids"] == self.image_id).sum())
        return self._n_image

    # -- prompts --------------------------------------------------------------------------
    def split(self, r: Request, target: str | None = None) -> Row | None:
        """`r` (and `target`, scored as the answer + end of sequence) cut after its last image token.

        None when the target adds no token or nothing lies between the image and the answer.
        """
        prompt = self.render(r.question, r.template)
        ids = self._ids(prompt)
        n_target = 0
        if target is not None:
            full = self._ids(prompt + " " + target.strip() + (self.tok.eos_token or ""))
            n_target = len(full) - len(ids)
            ids = full
        where = [k for k, t in enumerate(ids) if t == self.image_id]
        if not where:
            raise ValueError(f"the prompt has no image token ({self.processor.image_token!r}): {prompt[:80]!r}")
        cut = where[-1] + 1
        if target is not None and (n_target <= 0 or len(ids) - cut <= n_target):
            return None
        return Row(tuple(ids[:cut]), self.digest(r.image, r.variant), ids[cut:], n_target)

    def _ids(self, text: str) -> list[int]:
        """Token ids of `text` as the processor makes them, each image token expanded to the model's count.

        The image token is a special token, split off before the text around it is tokenized, so
        expanding the one id equals tokenizing the expanded text (the processor's way), at a
        fraction of the cost; tests/test_prefix.py checks the two paths agree.
        """
        if text not in self._tokens:
            n = self.image_token_count()
            out: list[int] = []
            for t in self.tok(text)["input_ids"]:
                out.extend([t] * n if t == self.image_id else [t])
            self._tokens[text] = out
        return self._tokens[text]

    # -- KV caches ------------------------------------------------------------------------
    def prefill(self, row: Row):
        """The KV cache of `row`'s prefix with its image, from the LRU or computed now."""
        import torch

        if row.key in self._kv:
            self._kv.move_to_end(row.key)
            self.stats["prefill_hits"] += 1
            return self._kv[row.key]
        (feats,) = self.features([row.digest])
        ids = torch.tensor([row.prefix], device=self.model.device)
        mask = ids == self.image_id
        if int(mask.sum()) != feats.shape[0]:
            raise ImageTokenMismatch(f"Image features and image tokens do not match: tokens: {int(mask.sum())}, features {feats.shape[0]}")
        with torch.inference_mode():
            emb = self.model.get_input_embeddings()(ids)
            emb = emb.masked_scatter(mask.unsqueeze(-1).expand_as(emb), feats.to(emb.device, emb.dtype))
            out = self.model(inputs_embeds=emb, use_cache=True, logits_to_keep=1)
        kv = out[self.cache_kw]
        self.stats["prefills"] += 1
        size = sum(t.numel() * t.element_size() for layer in kv.layers for t in (layer.keys, layer.values))
        self._kv[row.key] = kv
        self._kv_bytes += size
        while self._kv_bytes > self.kv_budget and len(self._kv) > 1:
            _, old = self._kv.popitem(last=False)
            self._kv_bytes -= sum(t.numel() * t.element_size() for layer in old.layers for t in (layer.keys, layer.values))
        return kv

    def stacked(self, rows: list[Row], capacity: int):
        """A StaticCache of `capacity` positions whose batch rows start with the prefixes of `rows` (one length).

        Generation then writes each new token in place, where a DynamicCache concatenates (copies)
        the whole cache at every step, a copy that grows with the batch (16 rows of a 7B prefix:
        ~5 GB per step). Each prefix is copied once, straight into its row.
        """
        import torch
        from transformers import StaticCache

        caches = [self.prefill(r) for r in rows]
        plen = len(rows[0].prefix)
        out = StaticCache(config=self.model.config, max_cache_len=capacity)
        for li, layer in enumerate(out.layers):
            k0, v0 = caches[0].layers[li].keys, caches[0].layers[li].values
            if hasattr(layer, "lazy_initialization") and hasattr(layer, "cumulative_length"):  # transformers 5.17-5.2x
                layer.lazy_initialization(k0.expand(len(rows), -1, -1, -1), v0.expand(len(rows), -1, -1, -1))
                for b, c in enumerate(caches):
                    layer.keys[b, :, :plen].copy_(c.layers[li].keys[0])
                    layer.values[b, :, :plen].copy_(c.layers[li].values[0])
                layer.cumulative_length.add_(plen)
            else:
                out.update(torch.cat([c.layers[li].keys for c in caches]), torch.cat([c.layers[li].values for c in caches]), li)
        return out

    def _own_copy(self, kv):
        """A DynamicCache over the same prefix tensors, so a forward pass extends the copy, not the LRU's entry."""
        from transformers import DynamicCache

        out = DynamicCache(config=self.model.config)
        for li, layer in enumerate(kv.layers):
            out.update(layer.keys, layer.values, li)
        return out

    def groups(self, rows: list[Row], max_tokens: int = 512) -> list[list[int]]:
        """Indices of `rows` grouped by prefix (image and template), each group's tails at most `max_tokens` long."""
        by_key: dict[tuple, list[int]] = {}
        for i, r in enumerate(rows):
            by_key.setdefault(r.key, []).append(i)
        out: list[list[int]] = []
        for idx in by_key.values():
            chunk, n = [], 0
            for i in idx:
                if chunk and n + len(rows[i].tail) > max_tokens:
                    out.append(chunk)
                    chunk, n = [], 0
                chunk.append(i)
                n += len(rows[i].tail)
            out.append(chunk)
        return out

    def max_rows(self, positions: int) -> int:
        """Rows per generation batch: batch_size, fewer where a GPU's free memory cannot hold their KV caches."""
        import torch

        dev = self.model.device
        if dev.type != "cuda":
            return self.batch_size
        tc = self.model.config.get_text_config()
        heads = tc.num_attention_heads
        per_row = (tc.num_hidden_layers * 2 * (getattr(tc, "num_key_value_heads", None) or heads)
                   * (getattr(tc, "head_dim", None) or tc.hidden_size // heads) * positions * self.model.dtype.itemsize)
        free, _ = torch.cuda.mem_get_info(dev)
        usable = 0.5 * free - max(0, self.kv_budget - self._kv_bytes)  # the prefix LRU may still grow to its budget
        return max(1, min(self.batch_size, int(usable // max(per_row, 1))))

    def batches(self, rows: list[Row], order_key, limit: int | None = None) -> list[list[int]]:
        """Indices of `rows` in batches of at most `limit` (batch_size), one prefix length per batch, sorted by `order_key`."""
        limit = limit or self.batch_size
        order = sorted(range(len(rows)), key=lambda i: (order_key(i), len(rows[i].prefix), rows[i].key))
        out: list[list[int]] = []
        for i in order:
            if (
                out
                and len(out[-1]) < limit
                and len(rows[out[-1][0]].prefix) == len(rows[i].prefix)
                and order_key(out[-1][0]) == order_key(i)
            ):
                out[-1].append(i)
            else:
                out.append([i])
        return out

    # -- the work -------------------------------------------------------------------------
    def generate(self, rows: list[Row], max_new_tokens: int) -> list[list[int]]:
        """Greedy continuations of `rows` (one batch): the new token ids of each, padding included."""
        import torch

        width = max(len(r.tail) for r in rows)
        plen = len(rows[0].prefix)
        pad = self.tok.pad_token_id
        ids = torch.full((len(rows), plen + width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for k, r in enumerate(rows):
            ids[k, :plen] = torch.tensor(r.prefix)
            ids[k, plen + width - len(r.tail) :] = torch.tensor(r.tail)
            mask[k, :plen] = 1
            mask[k, plen + width - len(r.tail) :] = 1
        # pads sit between the prefix and the tail: generate derives positions from the mask, so
        # every row's tail follows its prefix without a gap
        cache = self.stacked(rows, capacity=ids.shape[1] + max_new_tokens)
        dev = self.model.device
        with torch.inference_mode():
            gen = self.model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), max_new_tokens=max_new_tokens,
                                      do_sample=False, pad_token_id=pad, disable_compile=True, **{self.cache_kw: cache})
        return gen[:, ids.shape[1] :].tolist()

    def score(self, rows: list[Row]) -> list[float]:
        """Mean log-likelihood per target token of each row, teacher-forced after its cached prefix.

        `rows` share one prefix. Their tails are packed into one sequence after it: each tail sees
        the prefix and itself (a block-diagonal causal mask, positions restarting after the
        prefix), so the prefix's KV is read once for all of them instead of copied per row.
        """
        import torch

        plen = len(rows[0].prefix)
        kv = self._own_copy(self.prefill(rows[0]))
        total = sum(len(r.tail) for r in rows)
        ids = torch.tensor([[t for r in rows for t in r.tail]])
        pos = torch.tensor([[plen + j for r in rows for j in range(len(r.tail))]])
        allowed = torch.zeros((total, plen + total), dtype=torch.bool)
        allowed[:, :plen] = True
        starts, off = [], 0
        for r in rows:
            n = len(r.tail)
            allowed[off : off + n, plen + off : plen + off + n] = torch.ones((n, n), dtype=torch.bool).tril()
            starts.append(off)
            off += n
        dtype = self.model.dtype
        mask = torch.zeros((1, 1, total, plen + total), dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        dev = self.model.device
        ids, pos, mask = ids.to(dev), pos.to(dev), mask.to(dev)
        with torch.inference_mode():
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, **{self.cache_kw: kv}).logits[0].float()
        logp = torch.log_softmax(logits[:-1], dim=-1).gather(-1, ids[0, 1:].unsqueeze(-1)).squeeze(-1)
        out = []
        for off, r in zip(starts, rows):  # logits at i predict token i + 1: the target is the tail's last n_target
            end = off + len(r.tail) - 1
            out.append(float(logp[end - r.n_target : end].mean()))
        return out
