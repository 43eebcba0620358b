"""The original LLaVA repo format (haotian-liu/LLaVA outputs), converted in memory to transformers.

Three layouts come out of that repo's training scripts, and all three load here:

- full: config.json is a flat LlamaConfig plus `mm_*` keys; weights in the original names
  (`model.*`, `lm_head.weight`, `model.mm_projector.{0,2}.*`), safetensors or `.bin` pickles,
  single or sharded; the vision tower weights are usually stripped, sometimes present.
- stage 1: `mm_projector.bin` alone next to config.json; the LLM comes from `base=`.
- LoRA: a PEFT adapter + `non_lora_trainables.bin` (the projector); the LLM from `base=`.

The CLIP tower comes from `vision_tower=` or the local folder `mm_vision_tower` names. The
parts become a LlavaForConditionalGeneration (LlavaNext for `anyres`) + a processor without a
chat template, and HFAdapter serves them, so every probe runs unchanged. Unlike the original
loader (`strict=False`), tensors the model expects but the files lack are reported in
`loading_info["missing_keys"]` under their original names, so the loader probes fire.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vibes_eval.adapters.base import AdapterSpec
from vibes_eval.adapters.failures import tokenizer_packages
from vibes_eval.adapters.hf.model import HFAdapter, load_kwargs
from vibes_eval.adapters.llava_repo.config import NEXT_REPO, TEXT_CONFIGS, read_options
from vibes_eval.adapters.llava_repo.parts import build_processor, hf_target, load_tower
from vibes_eval.adapters.llava_repo.tokens import original_tokenization
from vibes_eval.adapters.llava_repo.weights import grow_input_embeddings, is_llm_key, original_name, read_weights, shards, to_hf
from vibes_eval.adapters.peft_merge import peft_quiet
from vibes_eval.adapters.sanity import read_config
from vibes_eval.adapters.weight_files import hash_weights
from vibes_eval.errors import CheckpointError

if TYPE_CHECKING:  # annotations only: the loaders do not import detection
    from vibes_eval.adapters.detect import Detection, Profile

__all__ = ["DEFAULT_TEMPLATE", "LlavaRepoAdapter", "expand2square", "find_layout", "read_weights"]

DEFAULT_TEMPLATE = "vicuna_v1"
"""The conversation style of LLaVA-1.5, used when neither --template nor a profile names one."""
NEXT_REPO_TEMPLATE = "qwen_1_5"
"""The same for the LLaVA-NeXT repo's Qwen checkpoints (LlavaQwenForCausalLM: OneVision, Interleave)."""

_NOT_TEXT = re.compile(r"^(mm_|image_|tune_|freeze_|unfreeze_|use_mm_proj|pretrain_mm|tokenizer_|s2)")


def expand2square(image, color: tuple[int, int, int]):
    """The original `pad`: centre the image on a square of `color` (the processor's mean colour)."""
    from PIL import Image

    w, h = image.size
    if w == h:
        return image
    side = max(w, h)
    out = Image.new(image.mode, (side, side), color)
    out.paste(image, ((side - w) // 2, (side - h) // 2))
    return out


# -- files ---------------------------------------------------------------------------------
def find_layout(ckpt: Path) -> str:
    """'lora' (adapter_config.json), 'full' (LLM weights) or 'stage1' (mm_projector.bin alone)."""
    if (ckpt / "adapter_config.json").is_file():
        return "lora"
    if shards(ckpt):
        return "full"
    if (ckpt / "mm_projector.bin").is_file():
        return "stage1"
    raise CheckpointError(
        f"{ckpt}: no weights of the original LLaVA format (model*.safetensors, pytorch_model*.bin, "
        "mm_projector.bin, or adapter_config.json + adapter_model.*)"
    )


def _tokenizer_class(folder: Path) -> str | None:
    """tokenizer_config.json's `tokenizer_class`, if it names one."""
    try:
        named = json.loads((folder / "tokenizer_config.json").read_text()).get("tokenizer_class")
    except (OSError, ValueError, AttributeError):
        return None
    return named if isinstance(named, str) else None


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / n).is_file() for n in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"))


# -- the adapter ------------------------------------------------------------------------------
class LlavaRepoAdapter(HFAdapter):
    """An original-format LLaVA checkpoint (full, stage-1 or LoRA) behind the Adapter interface."""

    loader = "llava_repo"

    @classmethod
    def check_spec(cls, spec: AdapterSpec, detection: Detection | None) -> None:
        """--base and --vision-tower are this loader's own options: nothing to refuse."""

    @classmethod
    def open(cls, spec: AdapterSpec, detection: Detection | None, profile: Profile) -> LlavaRepoAdapter:
        return cls(spec.checkpoint, profile, base=spec.base, vision_tower=spec.vision_tower, device=spec.device,
                   dtype=spec.dtype, template=spec.template, batch_size=spec.batch_size, prefix_cache=spec.prefix_cache,
                   config=detection.config if detection is not None else None)

    def __init__(
        self,
        ckpt: Path,
        profile: Profile,
        *,
        base: Path | None = None,
        vision_tower: Path | None = None,
        device: str | None = None,
        dtype: str | None = None,
        template: str | None = None,
        batch_size: int | None = None,
        prefix_cache: bool = True,
        config: dict | None = None,
    ):
        import transformers

        self.checkpoint = Path(ckpt)
        self.profile = profile
        self.batch_size = batch_size
        self.base = Path(base) if base else None
        cfg_path = self.checkpoint / "config.json"
        cfg = read_config(self.checkpoint) if config is None else config
        self.layout = find_layout(self.checkpoint)
        self._check_base(cfg)
        opts = self._options(cfg, cfg_path)
        transformers.logging.set_verbosity_error()  # missing keys are reported in loading_info instead
        transformers.utils.logging.disable_progress_bar()

        tower_dir = self._tower_dir(cfg, vision_tower)  # before reading gigabytes of weights
        state = self._original_state()
        text_cfg = self._text_config(cfg, cfg_path, state)
        tok = self._tokenizer(text_cfg)
        device, want, load_kw = load_kwargs(device, dtype or profile.dtype)
        model, info, processor = self._build(opts, text_cfg, tower_dir, state, tok, load_kw)
        del state
        if "device_map" not in load_kw:
            model.to(device)
        self.vision_tower_dir = tower_dir
        self.options = opts
        bg = processor.image_processor.image_mean
        # the original pads with the mean truncated to ints: (122, 116, 104) for CLIP
        self._pad_color = tuple(int(x * 255) for x in bg) if opts["aspect"] == "pad" else None

        name, source = self._template(template)
        self._setup(model, processor, info, device=device, dtype=want, template=name, prefix_cache=prefix_cache)
        self.template_source = source

    # -- validation of the config, one line per problem --------------------------------------
    def _check_base(self, cfg: dict) -> None:
        if self.layout in ("stage1", "lora") and self.base is None:
            what = "a stage-1 output (mm_projector.bin, no LLM weights)" if self.layout == "stage1" else "a LoRA adapter"
            named = ""
            if self.layout == "lora":
                try:
                    named = json.loads((self.checkpoint / "adapter_config.json").read_text()).get("base_model_name_or_path") or ""
                except (OSError, ValueError):
                    named = ""
            hint = f" (adapter_config.json names {named})" if named else ""
            raise CheckpointError(f"{self.checkpoint}: {what}: pass the LLM it was trained from with --base DIR{hint}")
        if self.layout == "full" and self.base is not None:
            raise CheckpointError(f"{self.checkpoint}: holds full LLM weights; --base is only for stage-1 and LoRA outputs")
        if self.base is not None:
            if not self.base.is_dir():
                raise CheckpointError(f"--base {self.base}: folder not found")
            if not shards(self.base):
                raise CheckpointError(f"--base {self.base}: no LLM weights (model*.safetensors or pytorch_model*.bin)")

    def _options(self, cfg: dict, cfg_path: Path) -> dict:
        return read_options(cfg, cfg_path)

    # -- the parts -------------------------------------------------------------------------
    def _original_state(self) -> dict:
        """All tensors in the original key names: the LLM (+ LoRA merged), projector, maybe the tower."""
        if self.layout == "full":
            state = read_weights(shards(self.checkpoint))
        else:
            state = read_weights(shards(self.base))
        if self.layout == "stage1":
            state.update(read_weights([self.checkpoint / "mm_projector.bin"]))
        elif self.layout == "lora":
            extra = self.checkpoint / "non_lora_trainables.bin"
            if extra.is_file():  # absent: the projector is missing, which loading_info reports
                trained = read_weights([extra])
                trained = {k.removeprefix("base_model."): v for k, v in trained.items()}
                if any(k.startswith("model.model.") for k in trained):  # PeftModel's extra "model." level
                    trained = {k.removeprefix("model."): v for k, v in trained.items()}
                state.update(trained)
            state = self._merge_lora(state)
        return {k: v for k, v in state.items() if not k.endswith(".inv_freq")}  # rotary buffers of old saves

    def _merge_lora(self, state: dict) -> dict:
        """Apply the PEFT adapter in `self.checkpoint` to the LLM part of `state` (merge_and_unload)."""
        import transformers

        try:
            from peft import PeftModel
        except ImportError:
            raise CheckpointError(f"{self.checkpoint}: a LoRA adapter needs the `peft` package (pip install peft)") from None
        cfg = read_config(self.base)
        text_cfg = self._text_config(cfg, self.base / "config.json", state)
        llm_keys = [k for k in state if is_llm_key(k)]
        llama_cls = getattr(transformers, text_cfg.__class__.__name__.replace("Config", "ForCausalLM"))
        llama = llama_cls.from_pretrained(None, config=text_cfg, state_dict={k: state[k] for k in llm_keys})
        try:
            with peft_quiet():
                merged = PeftModel.from_pretrained(llama, str(self.checkpoint), is_trainable=False).merge_and_unload()
        except (OSError, ValueError, RuntimeError, KeyError) as e:
            raise CheckpointError(
                f"{self.checkpoint}: cannot apply the LoRA adapter: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from None
        out = {k: v for k, v in state.items() if k not in llm_keys}
        out.update({k: v.detach() for k, v in merged.state_dict().items()})
        return out

    def _tower_dir(self, cfg: dict, given: Path | None) -> Path:
        if given is not None:
            given = Path(given)
            if not (given / "config.json").is_file():
                raise CheckpointError(f"--vision-tower {given}: not a folder with config.json (a CLIP vision model saved by transformers)")
            return given.resolve()
        named = cfg.get("mm_vision_tower") or cfg.get("vision_tower")
        if not named:
            raise CheckpointError(
                f"{self.checkpoint / 'config.json'}: mm_vision_tower: missing; pass --vision-tower DIR (a local CLIP vision tower)"
            )
        # the original resolves it against the working directory; a copied checkpoint folder keeps
        # its tower next to it more often, so that comes first
        for cand in (self.checkpoint / named, Path.cwd() / named):  # an absolute path stays itself
            if (cand / "config.json").is_file():
                return cand.resolve()
        raise CheckpointError(
            f"{self.checkpoint / 'config.json'}: mm_vision_tower: {named} is not a local folder (the original code downloads it); "
            "pass --vision-tower DIR with a local copy"
        )

    def _text_config(self, cfg: dict, cfg_path: Path, state: dict):
        import transformers

        arch = (cfg.get("architectures") or ["LlavaLlamaForCausalLM"])[0]
        if "hidden_size" not in cfg and self.base is not None:  # a bare stage-1 config: the LLM's is in base
            cfg = {**read_config(self.base), **cfg}
        cls = getattr(transformers, TEXT_CONFIGS.get(arch, "LlamaConfig"))
        fields = {k: v for k, v in cfg.items() if not _NOT_TEXT.match(k) and k not in ("architectures", "model_type", "auto_map")}
        # 4.3x-era keys, converted here: transformers 5 warns on rope_scaling (FutureWarning)
        theta, scaling = fields.pop("rope_theta", None), fields.pop("rope_scaling", None)
        if "rope_parameters" not in fields and (theta is not None or scaling):
            rope = {"rope_type": "default", "rope_theta": 10000.0 if theta is None else theta}
            if scaling:
                rope.update(
                    {k: v for k, v in scaling.items() if k != "type"}, rope_type=scaling.get("rope_type") or scaling.get("type", "default")
                )
            fields["rope_parameters"] = rope
        emb = state.get("model.embed_tokens.weight")
        if emb is not None:  # the weights decide: a resized vocabulary (<im_patch>) is not always in the config
            fields["vocab_size"] = int(emb.shape[0])
        try:
            return cls(**fields)
        except (TypeError, ValueError) as e:
            raise CheckpointError(f"{cfg_path}: not a valid {cls.__name__}: {e}".splitlines()[0]) from None

    def _tokenizer(self, text_cfg):
        import transformers

        folder = self.checkpoint if _has_tokenizer(self.checkpoint) else self.base
        if folder is None or not _has_tokenizer(folder):
            raise CheckpointError(f"{self.checkpoint}: no tokenizer files (tokenizer.json / tokenizer.model), here or in --base")
        lacking = tokenizer_packages(folder)
        if lacking:
            raise CheckpointError(lacking)
        # the class tokenizer_config.json names wins: AutoTokenizer with config= would pick the LLM's
        # own (a Qwen2Config gives Qwen2Tokenizer even for a folder whose tokenizer is Llama's)
        named = _tokenizer_class(folder)
        cls = getattr(transformers, named, None) if named else None
        try:
            if cls is not None and hasattr(cls, "from_pretrained"):
                tok = cls.from_pretrained(folder, local_files_only=True, trust_remote_code=False)
            else:  # config= so that AutoTokenizer does not read config.json (model_type llava_llama is unknown to it)
                tok = transformers.AutoTokenizer.from_pretrained(folder, config=text_cfg, local_files_only=True, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as e:
            raise CheckpointError(
                f"{folder}: cannot load the tokenizer: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
            ) from None
        tok.chat_template = None  # the original format has none: the template comes from --template / the profile
        return tok

    def _build(self, opts: dict, text_cfg, tower_dir: Path, state: dict, tok, load_kw: dict):
        """The HF model (weights loaded, missing ones reported in original names) and its processor."""
        import torch
        from tokenizers import AddedToken

        tower = load_tower(tower_dir)
        vision_cfg = tower.config
        mm_hidden = opts["mm_hidden_size"]
        if mm_hidden is not None and mm_hidden != vision_cfg.hidden_size:
            raise CheckpointError(
                f"{self.checkpoint / 'config.json'}: mm_hidden_size: {mm_hidden}, "
                f"but the vision tower {tower_dir} has hidden size {vision_cfg.hidden_size}"
            )
        if not tower.has_cls:  # the LLaVA-NeXT repo's SigLIP: the last layer dropped, its input read, every token
            opts.update(strategy="full", layer=-2)

        # the original splices id -200 where <image> stood; transformers wants a real token id
        image_id = tok.convert_tokens_to_ids("<image>")
        if image_id is None or image_id == tok.unk_token_id:
            tok.add_tokens([AddedToken("<image>", special=True, normalized=False)], special_tokens=True)
            image_id = tok.convert_tokens_to_ids("<image>")

        # the training code split prompts on <image> and tokenized each chunk on its own: so do we
        original_tokenization(tok, "<image>")
        ptype = opts["projector_type"]
        tied = bool(getattr(text_cfg, "tie_word_embeddings", False))  # Qwen2-0.5B ties its output head
        common = {
            "vision_config": vision_cfg,
            "text_config": text_cfg,
            "image_token_index": image_id,
            "projector_hidden_act": "gelu" if ptype == "mlp2x_gelu" else "linear",
            "vision_feature_layer": opts["layer"],
            "vision_feature_select_strategy": opts["strategy"],
            "tie_word_embeddings": tied,
        }
        config, cls, pinpoints = hf_target(opts, common, tower, self.checkpoint / "config.json")
        config.architectures = [cls.__name__]

        with torch.device("meta"):
            expected = set(cls(config).state_dict())
        hf_state, origin = to_hf(state, ptype, tower.model, text_cfg.hidden_size, vision_cfg.hidden_size)
        unexpected = sorted(origin[k] for k in hf_state if k not in expected)
        missing = sorted(expected - set(hf_state) - ({"lm_head.weight"} if tied else set()))
        try:
            model, info = cls.from_pretrained(
                None, config=config, state_dict={k: v for k, v in hf_state.items() if k in expected},
                output_loading_info=True, **load_kw,
            )
        except (RuntimeError, ValueError) as e:  # e.g. a tensor whose shape the config contradicts
            raise CheckpointError(
                f"{self.checkpoint}: cannot load the weights: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}"
            ) from None
        info = {
            "missing_keys": sorted(
                {original_name(k, ptype) for k in missing} | {original_name(k, ptype) for k in info.get("missing_keys", [])}
            ),
            "unexpected_keys": unexpected,
            "mismatched_keys": sorted(info.get("mismatched_keys", [])),
        }
        if image_id >= model.get_input_embeddings().num_embeddings:
            grow_input_embeddings(model, image_id + 1)
        model.generation_config = self._generation_config(tok)

        processor = build_processor(cls, tower, tok, opts["strategy"], pinpoints)
        return model, info, processor

    def _generation_config(self, tok):
        """bos/eos/pad only: a Vicuna generation_config.json's sampling settings would only warn under greedy."""
        from transformers import GenerationConfig

        ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
        for folder in (self.checkpoint, self.base):
            if folder is not None and (folder / "generation_config.json").is_file():
                loaded = GenerationConfig.from_pretrained(folder, local_files_only=True)
                ids.update({k: getattr(loaded, k) for k in ids if getattr(loaded, k, None) is not None})
                break
        return GenerationConfig(**ids)

    def _template(self, template: str | None) -> tuple[str, str]:
        """(template name, where it came from): --template, else the profile, else vicuna_v1 said out loud."""
        if template:
            return template, "--template"
        if self.profile.template:
            return self.profile.template, f"profile {self.profile.name}"
        # the original picks it from the directory name; we never guess from names: say what we used
        name, whose = DEFAULT_TEMPLATE, "LLaVA-1.5's"
        if self.options["architecture"] in NEXT_REPO:
            name, whose = NEXT_REPO_TEMPLATE, "the LLaVA-NeXT repo's for Qwen LLMs, as OneVision's"
        print(
            f"vibes-eval: {self.checkpoint}: the original LLaVA format records no conversation template; "
            f"using {name} ({whose}); pass --template NAME if it was trained with another",
            file=sys.stderr,
        )
        return name, "default for the original LLaVA format (nothing names one; pass --template to choose)"

    # -- HFAdapter hooks ---------------------------------------------------------------------
    def encode(self, prompts: list[str], images: list, padding_side: str = "left"):
        """The processor's tensors for rendered `prompts` (the original repo's tokenization), on the model's device."""
        if self._pad_color is not None:
            images = [expand2square(im, self._pad_color) for im in images]
        return super().encode(prompts, images, padding_side)

    def describe(self, sample_images: list[Path] | None = None) -> dict:
        """HFAdapter's fingerprint, plus the original format's layout, base and vision tower."""
        fp = super().describe(sample_images)
        fp["loader"] = "llava_repo"
        fp["architecture"] = self.options["architecture"]
        fp["converted_to"] = type(self.model).__name__
        fp["original_format"] = {
            "layout": self.layout,
            "base": str(self.base) if self.base else None,
            "vision_tower": str(self.vision_tower_dir),
            "projector_type": self.options["projector_type"],
            "image_aspect_ratio": self.options["aspect"],
        }
        if self.base is not None:
            fp["weights"].update({f"base/{k}": v for k, v in hash_weights(self.base).items()})
        return fp
