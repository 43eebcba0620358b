"""Checkpoint folders that are not a loadable model as they stand, recognised before anything is loaded.

What a trainer leaves on disk besides a plain `save_pretrained` folder (docs: the README's
"Checkpoint layouts" table):

- a DeepSpeed ZeRO checkpoint without consolidated weights (`global_stepN/` rank shards,
  `latest`, `zero_to_fp32.py`): one line with the command that consolidates it;
- an FSDP sharded state dict (`pytorch_model_fsdp_0/` with `.metadata` and `*.distcp`): one line
  with `accelerate merge-weights`;
- a weight file whose tensors all have 0 elements (what a ZeRO-3 model's state dict is when it
  was saved without gathering): named, never loaded as a model;
- a quantized checkpoint (config.json `quantization_config`) whose package is not installed: one
  line naming the package.

Reads file names, the `latest` file, safetensors headers and JSON only: no torch import.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import struct
from pathlib import Path

from vibes_eval.errors import CheckpointError

__all__ = ["QUANT_PACKAGES", "check_distributed", "check_quantization", "empty_weight_file", "zero_command"]

_WEIGHT_GLOBS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
_TRAINER_FILES = frozenset({"optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin"})
_HEADER_LIMIT = 100 << 20  # a safetensors header above this is not one


def _weights(ckpt: Path) -> list[Path]:
    return sorted(
        p for g in _WEIGHT_GLOBS for p in ckpt.glob(g)
        if p.is_file() and p.name not in _TRAINER_FILES and not p.name.startswith("rng_state")
        and not p.name.startswith("adapter_model")
    )


def _safetensors_shapes(path: Path) -> dict[str, list[int]] | None:
    """Tensor name -> shape from a safetensors header, or None when the file is not readable as one."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return None
            (n,) = struct.unpack("<Q", head)
            if n > _HEADER_LIMIT:
                return None
            header = json.loads(fh.read(n))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(header, dict):
        return None
    return {k: v.get("shape", []) for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}


def _pickle_shapes(path: Path) -> dict[str, list[int]] | None:
    """Tensor name -> shape of a torch pickle (read memory-mapped, weights_only), or None."""
    import torch

    try:
        sd = torch.load(path, map_location="meta", weights_only=True, mmap=True)
    except Exception:  # not a loadable pickle: the loader names it later  # noqa: BLE001
        return None
    if not isinstance(sd, dict):
        return None
    return {k: list(v.shape) for k, v in sd.items() if hasattr(v, "shape")}


def empty_weight_file(path: Path) -> int | None:
    """The number of tensors when every tensor in weight file `path` has 0 elements; None otherwise."""
    shapes = _safetensors_shapes(path) if path.suffix == ".safetensors" else _pickle_shapes(path)
    if not shapes:
        return None
    if all(any(d == 0 for d in shape) for shape in shapes.values()):
        return len(shapes)
    return None


def _empty_files(ckpt: Path) -> list[tuple[Path, int]]:
    files = _weights(ckpt)
    safes = [f for f in files if f.suffix == ".safetensors"]
    out = []
    for f in safes or files:  # transformers prefers safetensors: a .bin beside them is not what loads
        n = empty_weight_file(f)
        if n is not None:
            out.append((f, n))
    return out


def zero_command(ckpt: Path, empty: list[Path]) -> str:
    """The command that consolidates the ZeRO checkpoint in `ckpt` in place, for the script it carries.

    DeepSpeed's script took an output file (`python zero_to_fp32.py . pytorch_model.bin`) and now
    takes an output folder (`python zero_to_fp32.py . OUT_DIR [--safe_serialization]`); the
    folder's own copy says which (its argparse names `output_dir` or `output_file`).
    """
    script = ckpt / "zero_to_fp32.py"
    remove = f"rm {' '.join(p.name for p in empty)} && " if empty else ""
    if not script.is_file():
        return f"cd {shlex.quote(str(ckpt))} && {remove}python -m deepspeed.utils.zero_to_fp32 . pytorch_model.bin (needs deepspeed)"
    try:
        text = script.read_text(errors="replace")[:200_000]
    except OSError:
        text = ""
    if "output_dir" in text:
        safe = " --safe_serialization" if "safe_serialization" in text else ""
        return f"cd {shlex.quote(str(ckpt))} && {remove}python zero_to_fp32.py . .{safe}"
    return f"cd {shlex.quote(str(ckpt))} && {remove}python zero_to_fp32.py . pytorch_model.bin"


def _zero_tag(ckpt: Path) -> Path | None:
    """The `global_stepN` folder a DeepSpeed checkpoint's `latest` names, else the newest one present."""
    latest = ckpt / "latest"
    if latest.is_file() and latest.stat().st_size < 4096:
        tag = latest.read_text(errors="replace").strip()
        if tag and "/" not in tag and (ckpt / tag).is_dir():
            return ckpt / tag
    steps = [p for p in ckpt.glob("global_step*") if p.is_dir() and any(p.glob("*model_states.pt"))]
    return max(steps, key=lambda p: int(re.sub(r"\D", "", p.name) or 0)) if steps else None


def check_distributed(ckpt: Path) -> None:
    """CheckpointError, one line with the consolidating command, for a ZeRO or FSDP folder with no usable weights.

    A folder that also holds consolidated weights (ZeRO-2, or ZeRO-3 with
    stage3_gather_16bit_weights_on_model_save) loads as it is and passes. A weight file of
    0-element tensors is named whatever else the folder holds.
    """
    ckpt = Path(ckpt)
    if not ckpt.is_dir():
        return
    empty = _empty_files(ckpt)
    usable = [f for f in _weights(ckpt) if f not in {p for p, _ in empty}]
    tag = _zero_tag(ckpt)
    if tag is not None and not usable:
        ranks = len(list(tag.glob("*optim_states.pt")))
        stage = "3" if any(tag.glob("zero_pp_rank_*_model_states.pt")) else "1/2"
        also = f"; {empty[0][0].name} holds only 0-element tensors" if empty else ""
        raise CheckpointError(
            f"{ckpt}: a DeepSpeed ZeRO-{stage} checkpoint ({tag.name}/: {ranks} rank shard{'s' * (ranks != 1)}) "
            f"without consolidated weights{also}; consolidate it: {zero_command(ckpt, [p for p, _ in empty])}"
        )
    fsdp = sorted(p for p in ckpt.glob("pytorch_model_fsdp_*") if p.is_dir() and (p / ".metadata").is_file())
    if fsdp and not usable:
        shards = len(list(fsdp[0].glob("*.distcp")))
        merged = shlex.quote(str(ckpt) + "-merged")
        raise CheckpointError(
            f"{ckpt}: an FSDP sharded state dict ({fsdp[0].name}/: .metadata + {shards} .distcp shard{'s' * (shards != 1)}) "
            f"without consolidated weights; consolidate it: accelerate merge-weights {shlex.quote(str(fsdp[0]))} {merged} "
            f"(then copy config.json and the processor files of the model it was trained from into {ckpt}-merged)"
        )
    if empty:
        path, n = empty[0]
        raise CheckpointError(
            f"{path}: all {n} tensors have 0 elements (the parameter stubs of a DeepSpeed ZeRO-3 model saved without "
            f"gathering; set stage3_gather_16bit_weights_on_model_save or consolidate the run's global_step folder): not a model"
        )


QUANT_PACKAGES: dict[str, tuple[str, ...]] = {
    # config.json quantization_config.quant_method -> the packages transformers' quantizer needs
    # (transformers 5.x quantizers/quantizer_*.py validate_environment)
    "bitsandbytes": ("bitsandbytes",),
    "gptq": ("optimum", "gptqmodel"),
    "awq": ("gptqmodel",),
    "aqlm": ("aqlm",),
    "quanto": ("optimum.quanto",),
    "eetq": ("eetq",),
    "hqq": ("hqq",),
    "compressed-tensors": ("compressed_tensors",),
    "torchao": ("torchao",),
    "fbgemm_fp8": ("fbgemm_gpu",),
    "vptq": ("vptq",),
    "spqr": ("spqr_quant",),
}


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ModuleNotFoundError, ValueError):
        return False


def quant_summary(qc: dict) -> str:
    """'bitsandbytes 4-bit nf4', 'gptq 4-bit', ...: what a quantization_config says, for lines and the fingerprint."""
    method = str(qc.get("quant_method", "?"))
    if method == "bitsandbytes":
        bits = "4-bit" if qc.get("load_in_4bit") else "8-bit" if qc.get("load_in_8bit") else "?-bit"
        kind = qc.get("bnb_4bit_quant_type") if qc.get("load_in_4bit") else None
        return " ".join(x for x in (method, bits, kind) if x)
    bits = qc.get("bits") or qc.get("w_bit")
    return f"{method} {bits}-bit" if bits else method


def check_quantization(cfg: dict, cfg_path: Path) -> dict | None:
    """config.json's quantization_config when the packages its method needs are importable, else CheckpointError.

    None for an unquantized checkpoint. The line names the method, the package and how to get it.
    """
    qc = cfg.get("quantization_config")
    if qc is None:
        return None
    if not isinstance(qc, dict) or not isinstance(qc.get("quant_method"), str):
        raise CheckpointError(f"{cfg_path}: quantization_config.quant_method: missing or not a string")
    method = qc["quant_method"]
    needed = QUANT_PACKAGES.get(method)
    if needed is None:
        return qc  # transformers names what it lacks; the loader words it
    lacking = [m for m in needed if not _importable(m)]
    if lacking:
        pkgs = " ".join(m.replace("optimum.quanto", "optimum-quanto").replace("_", "-") for m in lacking)
        raise CheckpointError(
            f"{cfg_path}: quantization_config: a {quant_summary(qc)} checkpoint; loading it needs the "
            f"{' and '.join(lacking)} package{'s' * (len(lacking) > 1)}, not installed here (pip install {pkgs}"
            f"), or evaluate the unquantized checkpoint"
        )
    return qc
