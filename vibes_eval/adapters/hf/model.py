"""The transformers loader: llava, llava_next and llava_onevision checkpoints, offline.

Loads the processor (adapters/hf/processor.py: without a video processor when torchvision is
missing, old saves repaired) + the class named in `architectures` from a local folder
(local_files_only, trust_remote_code off) and serves the Adapter interface:
`generate(requests)` (batched greedy, left padding), `score(requests, targets)`
(teacher-forced mean log-likelihood per target token, batched, right padding) and
`describe()` (the fingerprint).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import vibes_eval.interrupt as interrupt
from vibes_eval.adapters.base import Adapter, AdapterSpec
from vibes_eval.adapters.families import prefix_path
from vibes_eval.adapters.sanity import read_config
from vibes_eval.adapters.template_sandbox import TemplateTooCostly, check_processor_template
from vibes_eval.adapters.templates import render_template, splice_template
from vibes_eval.adapters.weight_files import check_weights, hash_weights
from vibes_eval.errors import CheckpointError, ErrorKind, error_kind, one_line
from vibes_eval.records import Request, Response

if TYPE_CHECKING:  # annotations only: the loaders do not import detection
    from vibes_eval.adapters.detect import Detection, Profile

__all__ = ["HFAdapter", "load_image", "load_kwargs", "resolve_device", "tune_cpu_malloc"]


def load_image(path: Path, variant: str = "real"):
    """Open `path` as RGB; for the blank variant, a mean-grey image of the same size."""
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
    if variant == "blank":
        # (122, 116, 104): the CLIP mean colour that LLaVA pads with; normalises to zero
        return Image.new("RGB", im.size, (122, 116, 104))
    return im




def tune_cpu_malloc() -> bool:
    """On glibc, let freed tensor memory be reused instead of returned to the OS and faulted in again.

    glibc serves blocks above a (dynamic) threshold with fresh mmaps and trims the heap eagerly; a
    batched decode on the CPU allocates and frees megabyte-sized KV and activation tensors every
    step, and the page faults made it 2-3x slower (bench/vs_naive.py; the same effect as the
    MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_ environment variables). Process-wide and not
    undone: `vibes-eval run` calls it for a CPU run; a program using HFAdapter decides for itself.
    True when applied.
    """
    import ctypes
    import platform

    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(libc.mallopt(m_mmap_threshold, 32 << 20)) and bool(libc.mallopt(m_trim_threshold, 1 << 30))


def resolve_device(device: str | None, dtype: str | None) -> tuple[str, str]:
    """(device, dtype name): cuda with bfloat16 when present, else cpu with float32; explicit values win."""
    import torch

    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if dtype in (None, "auto"):
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return device, dtype


def quantize_problem(quantize: str | None, device: str | None) -> str | None:
    """Why `--quantize` cannot be honoured here (one line), or None: bitsandbytes quantizes on a CUDA GPU only."""
    if not quantize:
        return None
    import importlib.util

    import torch

    resolved = device if device not in (None, "auto") else ("cuda" if torch.cuda.is_available() else "cpu")
    if not resolved.startswith("cuda"):
        return f"--quantize {quantize}: bitsandbytes quantizes on a CUDA GPU; this run is on {resolved}"
    if importlib.util.find_spec("bitsandbytes") is None:
        return f"--quantize {quantize}: needs the bitsandbytes package (pip install bitsandbytes)"
    return None


def load_kwargs(device: str | None, dtype: str | None, quantize: str | None = None) -> tuple[str, str, dict]:
    """(device, dtype name, from_pretrained kwargs): the dtype, device_map="auto" on several GPUs, and with
    `quantize` (4bit, 8bit) a bitsandbytes quantization_config (4bit: NF4, bf16 compute)."""
    import torch

    device, dtype = resolve_device(device, dtype)
    kwargs: dict = {"dtype": getattr(torch, dtype)}
    if quantize:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16)
            if quantize == "4bit" else BitsAndBytesConfig(load_in_8bit=True))
    if device == "cuda" and torch.cuda.device_count() > 1:
        kwargs["device_map"] = "auto"  # several GPUs: accelerate spreads the layers
    return device, dtype, kwargs


class HFAdapter(Adapter):
    """A transformers-native LLaVA-family checkpoint behind the Adapter interface."""

    loader = "hf"
    supports_scoring = True
    supports_prompt_logprobs = True
    quantize: str | None = None
    """`4bit` / `8bit` when bitsandbytes quantized the weights on load (`--quantize`); the fingerprint says so."""
    """Teacher-forced log-likelihoods are available (a server adapter may not have them)."""

    @classmethod
    def check_spec(cls, spec: AdapterSpec, detection: Detection | None) -> None:
        super().check_spec(spec, detection)
        problem = quantize_problem(spec.quantize, spec.device)
        if problem:
            from vibes_eval.errors import UsageError

            raise UsageError(problem)

    @classmethod
    def open(cls, spec: AdapterSpec, detection: Detection | None, profile: Profile) -> HFAdapter:
        return cls(spec.checkpoint, profile, device=spec.device, dtype=spec.dtype, template=spec.template,
                   batch_size=spec.batch_size, prefix_cache=spec.prefix_cache,
                   config=detection.config if detection is not None else None,
                   peft=detection.peft if detection is not None else None, trust_remote_code=spec.trust_remote_code,
                   quantize=spec.quantize)

    def __init__(
        self,
        ckpt: Path,
        profile: Profile,
        *,
        device: str | None = None,
        dtype: str | None = None,
        template: str | None = None,
        batch_size: int | None = None,
        prefix_cache: bool = True,
        config: dict | None = None,
        peft=None,
        trust_remote_code: bool = False,
        quantize: str | None = None,
    ):
        """Load `ckpt` with `profile`; `config` is its config.json when detection already read it.

        `peft` (adapters.peft_adapter.PeftAdapter): `ckpt` is an adapter, merged into its base in memory.
        `trust_remote_code`: the class may come from the folder's own code (config.json auto_map).
        `quantize`: `4bit` / `8bit`, quantized on load by bitsandbytes (check_spec made sure a GPU and the package are there).
        """
        import torch
        import transformers

        self.checkpoint = Path(ckpt)
        self.peft = peft
        self.model_dir = peft.base if peft is not None else self.checkpoint
        self.profile = profile
        self.batch_size = batch_size  # None: 32 with shared prefixes (capped by GPU memory), else 16
        cfg = read_config(self.model_dir) if config is None else config
        arch = (cfg.get("architectures") or ["?"])[0]
        cls = getattr(transformers, arch, None)
        self.remote_code = None
        if cls is None and trust_remote_code:
            from vibes_eval.adapters.remote_code import remote_class

            cls, self.remote_code = remote_class(self.model_dir, cfg)
        if cls is None:
            raise CheckpointError(
                f"{self.checkpoint / 'config.json'}: architectures: {arch} is unknown to transformers {transformers.__version__}"
            )
        check_weights(self.model_dir)

        self.quantize = quantize
        device, want, load_kw = load_kwargs(device, dtype or profile.dtype, quantize)
        if device.startswith("cuda"):  # one GPU: weights go straight from the file to it, not through the CPU
            load_kw.setdefault("device_map", device)
        kwargs = {"local_files_only": True, "trust_remote_code": self.remote_code is not None, **load_kw}
        # missing keys come from output_loading_info; the library's own warnings and progress bars
        # (e.g. "requires torchvision ... falling back to PIL") would only clutter the scorecard's terminal
        transformers.logging.set_verbosity_error()
        transformers.utils.logging.disable_progress_bar()
        # tensors missing from the checkpoint are initialized at random: seed them, so two runs agree
        torch.manual_seed(0)
        from vibes_eval.adapters.hf.processor import load_processor

        processor, repairs, notes = load_processor(peft.processor_dir() if peft is not None else self.checkpoint, cfg)
        self.processor_notes = {"repaired": repairs, "notes": notes}
        if repairs:  # an old save: what the processor lacked came from config.json; say so
            print(f"vibes-eval: {self.checkpoint}: processor_config.json lacks fields (saved before transformers 4.45); "
                  f"repaired from config.json: {', '.join(repairs)}", file=sys.stderr)
        try:
            model, info = cls.from_pretrained(self.model_dir, output_loading_info=True, **kwargs)
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise CheckpointError(f"{self.model_dir}: cannot load: {one_line(e)}") from None
        if self.remote_code is not None and not callable(getattr(model, "generate", None)):
            raise CheckpointError(f"{self.model_dir}: {arch} (its own code) has no generate(): vibes-eval needs the transformers "
                                  "generate and processor conventions")
        if peft is not None:
            from vibes_eval.adapters.peft_merge import apply_adapter

            model = apply_adapter(model, peft)
        if "device_map" not in kwargs:
            model.to(device)
        self._setup(model, processor, info, device=device, dtype=want, template=template, prefix_cache=prefix_cache)

    def _setup(self, model, processor, loading_info: dict | None, *, device: str, dtype: str, template: str | None,
               prefix_cache: bool = True) -> None:
        """Adopt a loaded model + processor (other loaders convert their format, then call this)."""
        self.model, self.processor = model.eval(), processor
        self.device, self.dtype = device, dtype
        info = loading_info or {}
        self.loading_info = {k: sorted(v) if isinstance(v, (set, list)) else v for k, v in info.items() if k != "error_msgs"}
        tok = self.processor.tokenizer
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.template_source = "checkpoint chat template"
        if template:
            self.template_name = template
            self.template_source = "--template"
        elif getattr(self.processor, "chat_template", None):
            self.template_name = None
        else:
            self.template_name = self.profile.template
            self.template_source = f"profile {self.profile.name} fallback (the checkpoint ships no chat template)"
        if self.template_name is None:  # a template that loops for hours is refused at load, in one line
            try:
                check_processor_template(
                    self.processor, [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}]
                )
            except TemplateTooCostly as e:
                raise CheckpointError(f"{self.checkpoint}: chat_template: {e}") from None
        self._prefix = None
        if prefix_cache and prefix_path(self.model.config.model_type):  # one image, a fixed token count: prefixes are shared
            from vibes_eval.adapters.hf.prefix import PrefixEngine

            self.batch_size = self.batch_size or 32
            self._prefix = PrefixEngine(self.model, self.processor, self.render_prompt, batch_size=self.batch_size, load_image=load_image)
        else:
            self.batch_size = self.batch_size or 16

    def close(self) -> None:
        """Drop the prefix engine, which holds `self.render_prompt` (a cycle back to this adapter): once the
        caller lets go, the model is freed by reference counting, not at the collector's next full pass.
        Still usable afterwards, without shared prefixes."""
        self._prefix = None

    # -- prompts --------------------------------------------------------------------------
    def render_prompt(self, question: str, template: str | None = None) -> str:
        """The full prompt text for one image + `question`, as the model will see it.

        With `template`, the template-fit probe's variant: this prompt up to its image, then that
        template's cue (`templates.splice_template`).
        """
        cache = self.__dict__.setdefault("_rendered", {})  # a chat template is a jinja render: once per question
        if len(cache) > 4096:  # a long-running `serve` sees endless questions
            cache.clear()
        if (question, template) in cache:
            return cache[question, template]
        if self.template_name:
            own = render_template(self.template_name, question)
        else:
            msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
            check_processor_template(self.processor, msgs)  # the checkpoint's jinja, first within time and size bounds
            own = self.processor.apply_chat_template(msgs, add_generation_prompt=True)
        if template:
            own = splice_template(own, getattr(self.processor, "image_token", "<image>"), template, question)
        cache[question, template] = own
        return own

    def prompt_logits(self, enc):
        """The logits of one teacher-forced pass over `encode`'s tensors (the likelihood path of `serve`).

        With shared image prefixes the vision tower runs shortened to the layer LLaVA reads, and
        transformers' hidden-state capture is set up for that tower: this pass runs it the same way.
        """
        import contextlib

        import torch

        shortened = self._prefix.tower_up_to_feature_layer() if self._prefix is not None else contextlib.nullcontext(None)
        with torch.inference_mode(), shortened as layer:
            kwargs = {"vision_feature_layer": layer} if layer is not None else {}
            return self.model(**enc, **kwargs).logits

    def encode(self, prompts: list[str], images: list, padding_side: str = "left"):
        """The processor's tensors for rendered `prompts` with their `images`, on the model's device."""
        tok = self.processor.tokenizer
        tok.padding_side = padding_side
        try:
            enc = self.processor(text=prompts, images=images, return_tensors="pt", padding=True)
        finally:
            tok.padding_side = "left"
        return enc.to(self.model.device)

    # -- the Adapter interface ------------------------------------------------------------
    def generate(self, requests: list[Request]) -> list[Response]:
        """Greedy answers to `requests`, batched by max_new_tokens; a crash becomes error Responses."""
        import torch

        out: dict[int, Response] = {}
        tok = self.processor.tokenizer
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos if eos is not None else tok.eos_token_id])
        rows: list = [None] * len(requests)
        failed: dict[int, tuple[str, ErrorKind]] = {}
        if self._prefix is not None:
            for i, r in enumerate(requests):
                try:
                    rows[i] = self._prefix.split(r)
                except Exception as e:  # an unreadable image or prompt: this request is an error, the others go on
                    kind = ErrorKind.IMAGE_UNREADABLE if isinstance(e, OSError) else error_kind(e)
                    failed[i] = (one_line(e), kind)
            todo = [i for i in range(len(requests)) if i not in failed]
            positions = max((len(rows[i].prefix) + len(rows[i].tail) + requests[i].max_new_tokens for i in todo), default=1)
            plan = [[todo[k] for k in b] for b in self._prefix.batches(
                [rows[i] for i in todo], lambda k: requests[todo[k]].max_new_tokens, self._prefix.max_rows(positions))]
        else:
            order = sorted(range(len(requests)), key=lambda i: requests[i].max_new_tokens)
            plan = [order[k : k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        for i, (msg, kind) in failed.items():
            out[i] = Response(prompt_id=requests[i].prompt_id, variant=requests[i].variant, finish="error", error=msg,
                              error_kind=kind)
        for idx in plan:
            interrupt.raise_if_stopped()  # a Ctrl-C a library swallowed ends the run at the next batch
            batch = [requests[i] for i in idx]
            limit = max(r.max_new_tokens for r in batch)
            try:
                if self._prefix is not None:
                    new = self._prefix.generate([rows[i] for i in idx], limit)
                else:
                    images = [load_image(r.image, r.variant) for r in batch]
                    enc = self.encode([self.render_prompt(r.question, r.template) for r in batch], images)
                    with torch.inference_mode():
                        gen = self.model.generate(**enc, max_new_tokens=limit, do_sample=False, pad_token_id=tok.pad_token_id)
                    new = gen[:, enc["input_ids"].shape[1] :].tolist()
            except Exception as e:  # the model crashed: every prompt of the batch is an error, not an empty answer
                interrupt.raise_if_stopped()
                for i, r in zip(idx, batch):
                    out[i] = Response(prompt_id=r.prompt_id, variant=r.variant, finish="error", error=one_line(e),
                                      error_kind=error_kind(e))
                continue
            for i, r, ids in zip(idx, batch, new):
                cut = next((k for k, t in enumerate(ids) if t in eos_ids), None)
                n = len(ids) if cut is None else cut
                ids = ids[: min(n, r.max_new_tokens)]
                text = tok.decode(ids, skip_special_tokens=True).strip()
                finish = "eos" if cut is not None and cut <= r.max_new_tokens else "length"
                out[i] = Response(prompt_id=r.prompt_id, variant=r.variant, text=text, new_tokens=len(ids), finish=finish)
        return [out[i] for i in range(len(requests))]

    def score(self, requests: list[Request], targets: list[str]) -> list[float | None]:
        """Mean log-likelihood per token of each target given its request (teacher-forced, no sampling).

        The target is scored as the assistant's answer followed by the end-of-sequence token.
        None where the target adds no token. A failing forward pass raises: the runner reports it.
        """
        import torch

        if self._prefix is not None:
            rows = [self._prefix.split(r, t) for r, t in zip(requests, targets)]
            live = [i for i, row in enumerate(rows) if row is not None]
            values: list[float | None] = [None] * len(requests)
            for b in self._prefix.groups([rows[i] for i in live]):
                for i, v in zip([live[k] for k in b], self._prefix.score([rows[live[k]] for k in b])):
                    values[i] = v
            return values
        tok = self.processor.tokenizer
        out: list[float | None] = [None] * len(requests)
        for start in range(0, len(requests), self.batch_size):
            idx = list(range(start, min(start + self.batch_size, len(requests))))
            images = [load_image(requests[i].image, requests[i].variant) for i in idx]
            prompts = [self.render_prompt(requests[i].question, requests[i].template) for i in idx]
            fulls = [p + " " + targets[i].strip() + (tok.eos_token or "") for p, i in zip(prompts, idx)]
            p_len = self.encode(prompts, images)["attention_mask"].sum(1)
            # left padding: every row ends at the last column, so the logits of the last `keep`
            # positions cover every target and the LM head and log-softmax run on those only
            # (RoPE depends on relative positions, so the left shift changes nothing)
            enc = self.encode(fulls, images)
            t_len = (enc["attention_mask"].sum(1) - p_len).tolist()
            keep = max(t_len) + 1
            with torch.inference_mode():
                logits = self.model(**enc, logits_to_keep=keep).logits[:, -keep:-1].float()
            # the window also covers prompt positions of rows with shorter targets (read back only for
            # the target); an image token there can lie past the output head (the original format grows
            # only the input embeddings for <image>), so clamp: those values are discarded
            ids = enc["input_ids"][:, -keep + 1 :].clamp(max=logits.shape[-1] - 1)
            tok_lp = torch.log_softmax(logits, dim=-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
            for row, i in enumerate(idx):
                t = int(t_len[row])
                out[i] = float(tok_lp[row, keep - 1 - t :].mean()) if t > 0 else None
        return out

    def describe(self, sample_images: list[Path] | None = None) -> dict:
        """The fingerprint: what was loaded and how (docs/architecture.md, 'The fingerprint')."""
        import torch
        import transformers

        m = self.model
        cfg = m.config
        groups = {"vision_tower": 0, "projector": 0, "llm": 0}
        for name, p in m.named_parameters():
            key = "vision_tower" if "vision_tower" in name else "projector" if "multi_modal_projector" in name else "llm"
            groups[key] += p.numel()
        fp = {
            "architecture": (cfg.architectures or [type(m).__name__])[0],
            "model_type": cfg.model_type,
            "loader": "hf",
            "profile": self.profile.name,
            "template": self.template_name or "checkpoint chat template",
            "template_source": self.template_source,
            "dtype": self.dtype,
            "quantize": self.quantize,
            "device": str(m.device),
            "parameters": groups,
            "vision_feature_layer": getattr(cfg, "vision_feature_layer", None),
            "vision_feature_select_strategy": getattr(cfg, "vision_feature_select_strategy", None),
            "processor": getattr(self, "processor_notes", None) or {"repaired": [], "notes": []},
            "missing_keys": self.loading_info.get("missing_keys", []),
            "unexpected_keys": self.loading_info.get("unexpected_keys", []),
            "weights": self._weight_hashes(),
            "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        }
        if getattr(self, "peft", None) is not None:
            fp["peft"] = self.peft.describe()
        if getattr(self, "remote_code", None) is not None:
            fp["remote_code"] = self.remote_code
        fp["projector"] = self._projector_stats(sample_images or [])
        from vibes_eval.budget.checkpoint import budget_for_checkpoint
        from vibes_eval.errors import BudgetError

        try:  # the same arithmetic as `vibes-eval budget CKPT`
            if self.checkpoint is None:
                raise BudgetError("no checkpoint folder (an in-memory model)")
            fp["visual_token_budget"] = budget_for_checkpoint(getattr(self, "model_dir", self.checkpoint)).describe()
        except BudgetError as e:
            fp["visual_token_budget"] = f"unknown: {e}"
        if sample_images:
            fp["rendered_prompt"] = self.render_prompt("{question}")
            try:
                enc = self.encode([self.render_prompt("?")], [load_image(sample_images[0])])
                image_id = getattr(cfg, "image_token_id", None) or getattr(cfg, "image_token_index", None)
                fp["visual_tokens"] = int((enc["input_ids"] == image_id).sum())
            except Exception as e:  # noqa: BLE001 - the count is evidence; its failure is reported, not fatal
                fp["visual_tokens"] = f"error: {type(e).__name__}: {e}"
        return fp


    def _weight_hashes(self) -> dict[str, str]:
        """sha256 per weight file; an adapter's base files and its own, as `base/...` and `adapter/...`."""
        if getattr(self, "peft", None) is not None:
            from vibes_eval.adapters.peft_merge import adapter_hashes

            return adapter_hashes(self.peft)
        return hash_weights(self.checkpoint) if self.checkpoint is not None else {}

    def _projector(self):
        m = self.model
        return getattr(getattr(m, "model", m), "multi_modal_projector", None)

    def _projector_stats(self, images: list[Path]) -> dict:
        """Projector weights (zero? finite? missing?) and what it makes of a few real images."""
        import torch

        proj = self._projector()
        if proj is None:
            return {"found": False}
        params = dict(proj.named_parameters())
        flat = torch.cat([p.detach().float().flatten().cpu() for p in params.values()])
        stats = {
            "found": True,
            "tensors": len(params),
            "parameters": int(flat.numel()),
            "all_zero": bool((flat == 0).all()),
            "nonfinite": int((~torch.isfinite(flat)).sum()),
            "weight_rms": round(float(flat.pow(2).mean().sqrt()), 5),
            "missing": [k for k in self.loading_info.get("missing_keys", []) if "projector" in k],
        }
        emb = self.model.get_input_embeddings().weight.detach().float()
        stats["text_embedding_norm"] = round(float(emb.norm(dim=-1).mean()), 4)
        if len(images) < 2:
            return stats
        imgs = list(images[:4])
        try:
            if self._prefix is not None:  # the run's own image cache: these features serve the answers later
                feats = torch.stack(self._prefix.features([self._prefix.digest(p, "real") for p in imgs])).float()
                feats = feats.reshape(-1, feats.shape[-1])
            else:
                captured = []
                hook = proj.register_forward_hook(lambda mod, inp, out: captured.append(out.detach().float()))
                try:
                    enc = self.encode([self.render_prompt("?")] * len(imgs), [load_image(p) for p in imgs])
                    with torch.inference_mode():
                        self.model(**enc)
                finally:
                    hook.remove()
                feats = torch.cat([c.reshape(-1, c.shape[-1]) for c in captured]) if captured else None
        except Exception as e:  # noqa: BLE001 - evidence only; the failure is recorded in the fingerprint
            stats["visual_tokens_error"] = f"{type(e).__name__}: {e}"[:300]
            return stats
        if feats is None or feats.numel() == 0:
            return stats
        per_image = feats.reshape(len(imgs), -1, feats.shape[-1]) if feats.shape[0] % len(imgs) == 0 else None
        stats["visual_token_norm"] = round(float(feats.norm(dim=-1).mean()), 4)
        stats["norm_ratio"] = round(stats["visual_token_norm"] / max(stats["text_embedding_norm"], 1e-12), 4)
        if per_image is not None:
            pooled = per_image.flatten(1)
            pooled = pooled - pooled.mean(0, keepdim=True)  # what differs between images
            spread = float(pooled.norm(dim=-1).mean()) / max(float(per_image.flatten(1).norm(dim=-1).mean()), 1e-12)
            stats["between_image_spread"] = round(spread, 5)
        return stats
