"""A checkpoint folder's weight files: found, opened far enough to name a corrupt one, hashed.

The hash goes into the fingerprint (two runs of the same weights say so); above
HASH_FULL_LIMIT in total, each file is hashed by its size, first and last 16 MiB.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from vibes_eval.loaders.detect import CheckpointError

__all__ = ["HASH_FULL_LIMIT", "check_weights", "hash_weights", "weight_files"]

HASH_FULL_LIMIT = 4 << 30  # weight files above this total are hashed by samples (size + head + tail)
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth")


def weight_files(ckpt: Path) -> list[Path]:
    return sorted(p for pat in _WEIGHTS for p in ckpt.glob(pat))


def check_weights(ckpt: Path) -> None:
    """Open every weight file's header so a truncated or corrupt file is named, not a traceback."""
    from safetensors import safe_open

    files = weight_files(ckpt)
    if not files:
        raise CheckpointError(f"{ckpt}: no weight files (*.safetensors, *.bin) in the folder")
    for f in files:
        if f.suffix != ".safetensors":
            continue
        try:
            with safe_open(str(f), framework="pt") as h:
                keys = list(h.keys())
                if keys:
                    h.get_slice(keys[-1])
        except Exception as e:  # safetensors raises its own error types for every malformed header
            raise CheckpointError(f"{f}: cannot read weights: {str(e).splitlines()[0]}") from None
        size = f.stat().st_size
        if size < 8:
            raise CheckpointError(f"{f}: cannot read weights: file is {size} bytes")


def hash_weights(ckpt: Path) -> dict[str, str]:
    files = weight_files(ckpt)
    total = sum(f.stat().st_size for f in files)
    out = {}
    from vibes_eval.sweep import cached_digest

    for f in files:
        done = cached_digest(f) if total <= HASH_FULL_LIMIT else None  # read ahead during the previous checkpoint
        if done:
            out[f.name] = done
            continue
        h = hashlib.sha256()
        with f.open("rb") as fh:
            if total <= HASH_FULL_LIMIT:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
                out[f.name] = "sha256:" + h.hexdigest()
            else:
                size = f.stat().st_size
                h.update(str(size).encode())
                h.update(fh.read(16 << 20))
                fh.seek(max(0, size - (16 << 20)))
                h.update(fh.read())
                out[f.name] = "sampled-sha256:" + h.hexdigest()
    return out
