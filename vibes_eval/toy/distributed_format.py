"""`vibes-eval toy build OUT --format distributed`: the toy as DeepSpeed and FSDP runs leave it on disk.

    OUT/distributed/zero3/          a Trainer checkpoint of a ZeRO-3 run saved without
                                    stage3_gather_16bit_weights_on_model_save: config.json and the
                                    processor, `latest`, `zero_to_fp32.py`, global_step2/ with one
                                    zero_pp_rank_R_mp_rank_00_model_states.pt and one
                                    bf16_zero_pp_rank_R_mp_rank_00_optim_states.pt per rank (2), and no
                                    weight file (transformers >= 4.3x removes the dummy one) -> exit 3
    OUT/distributed/zero3-empty/    the same as older transformers wrote it: plus a model.safetensors
                                    whose tensors all have 0 elements -> exit 3 naming it
    OUT/distributed/zero2/          a ZeRO-2 checkpoint: the same DeepSpeed files (mp_rank_00_model_states.pt)
                                    and the consolidated model.safetensors the Trainer also writes -> loads (exit 0)
    OUT/distributed/fsdp/           an FSDP SHARDED_STATE_DICT checkpoint: pytorch_model_fsdp_0/ written by
                                    torch.distributed.checkpoint (.metadata, __0_0.distcp), no config.json -> exit 3
    OUT/distributed/empty-tensors/  a save_pretrained folder whose model.safetensors holds only 0-element tensors -> exit 3

File names follow DeepSpeed's engine (`_get_ckpt_name`, `_get_zero_ckpt_name`) and accelerate's
`save_fsdp_model`; the DeepSpeed pickles hold plain dicts and tensors of that structure (DeepSpeed
itself is not needed), and `zero_to_fp32.py` is a stand-in with the current script's arguments.
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

__all__ = ["LAYOUTS", "build_distributed", "write_distributed"]

LAYOUTS = ("zero3", "zero3-empty", "zero2", "fsdp", "empty-tensors")
TAG = "global_step2"
RANKS = 2

_STAND_IN = '''"""Stand-in for DeepSpeed's zero_to_fp32.py in a vibes-eval toy checkpoint (DeepSpeed copies its own here).

usage: python zero_to_fp32.py checkpoint_dir output_dir [--safe_serialization]
"""
import argparse

parser = argparse.ArgumentParser()
parser.add_argument("checkpoint_dir")
parser.add_argument("output_dir")
parser.add_argument("--safe_serialization", action="store_true")
parser.parse_args()
raise SystemExit("a vibes-eval toy: these shards hold no real optimizer state")
'''


def _trainer_files(folder: Path, step: int = 2) -> None:
    state = {"global_step": step, "epoch": 0.5, "log_history": [], "best_model_checkpoint": None}
    (folder / "trainer_state.json").write_text(json.dumps(state, indent=2) + "\n")


def _deepspeed_files(folder: Path, state: dict, stage: int) -> None:
    """`latest`, zero_to_fp32.py and global_step2/ as DeepSpeed's engine names them, for `RANKS` ranks."""
    import torch

    tag = folder / TAG
    tag.mkdir(parents=True)
    (folder / "latest").write_text(TAG)
    (folder / "zero_to_fp32.py").write_text(_STAND_IN)
    shapes = {k: v.shape for k, v in state.items()}
    flat = torch.cat([v.reshape(-1).float() for v in state.values()])
    part = -(-flat.numel() // RANKS)
    for r in range(RANKS):
        piece = flat[r * part:(r + 1) * part].clone()
        optim = {"optimizer_state_dict": {"zero_stage": stage, "partition_count": RANKS,
                                          ("fp32_flat_groups" if stage == 3 else "single_partition_of_fp32_groups"): [piece]}}
        torch.save(optim, tag / f"bf16_zero_pp_rank_{r}_mp_rank_00_optim_states.pt")
        if stage == 3:
            module = {k: torch.empty(0, dtype=v.dtype) for k, v in state.items()}
            torch.save({"module": module, "buffer_names": [], "param_shapes": [shapes], "ds_version": "0.16.4"},
                       tag / f"zero_pp_rank_{r}_mp_rank_00_model_states.pt")
    if stage != 3:
        torch.save({"module": {k: v.to(torch.bfloat16) for k, v in state.items()}, "buffer_names": [],
                    "param_shapes": [shapes], "ds_version": "0.16.4"}, tag / "mp_rank_00_model_states.pt")


def _empty_weights(folder: Path, state: dict) -> None:
    import torch
    from safetensors.torch import save_file

    save_file({k: torch.empty(0, dtype=v.dtype) for k, v in state.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})


def write_distributed(healthy_dir: Path, out_dir: Path) -> dict[str, Path]:
    """Write the distributed layouts of the toy's healthy checkpoint under `out_dir`."""
    import torch
    import torch.distributed.checkpoint as dcp
    from safetensors.torch import load_file

    out_dir = Path(out_dir)
    healthy_dir = Path(healthy_dir)
    paths = {name: out_dir / name for name in LAYOUTS}
    for path in paths.values():
        if path.exists():
            shutil.rmtree(path)
    state = load_file(healthy_dir / "model.safetensors")
    small = [p for p in healthy_dir.iterdir() if p.is_file() and p.suffix != ".safetensors" and not p.name.startswith(".")]
    for name in ("zero3", "zero3-empty", "zero2", "empty-tensors"):
        paths[name].mkdir(parents=True)
        for p in small:  # config.json, generation_config.json and the processor, as the Trainer writes them
            shutil.copy2(p, paths[name] / p.name)
    for name, stage in (("zero3", 3), ("zero3-empty", 3), ("zero2", 2)):
        _deepspeed_files(paths[name], state, stage)
        _trainer_files(paths[name])
    _empty_weights(paths["zero3-empty"], state)
    _empty_weights(paths["empty-tensors"], state)
    shutil.copy2(healthy_dir / "model.safetensors", paths["zero2"] / "model.safetensors")

    shard = paths["fsdp"] / "pytorch_model_fsdp_0"
    shard.mkdir(parents=True)
    with warnings.catch_warnings():  # "assuming the intent is to save in a single process": it is
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save({"model": dict(state)}, storage_writer=dcp.FileSystemWriter(str(shard)), no_dist=True)
    _trainer_files(paths["fsdp"])
    torch.save({"python": None}, paths["fsdp"] / "rng_state_0.pth")
    return paths


def build_distributed(out: Path, seed: int = 0, log=print, bars=None) -> dict:
    """`toy build OUT --format distributed`: OUT/distributed/<layout>/; returns the zoo's build info."""
    from vibes_eval.resources import TOY_MARKER
    from vibes_eval.toy.factory import build_zoo
    from vibes_eval.toy.variants import FACTORY_VERSION

    zoo = build_zoo(seed, log, bars)
    paths = write_distributed(zoo / "healthy", Path(out) / "distributed")
    for layout, path in paths.items():
        marker = {"variant": "healthy", "factory_version": FACTORY_VERSION, "seed": seed, "format": "distributed", "layout": layout}
        (path / TOY_MARKER).write_text(json.dumps(marker) + "\n")
    return json.loads((zoo / "zoo.json").read_text())
