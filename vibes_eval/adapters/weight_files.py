"""A checkpoint folder's weight files: found, opened far enough to name a corrupt one, hashed.

The hash goes into the fingerprint (two runs of the same weights say so); above
HASH_FULL_LIMIT in total, each file is hashed by its size, first and last 16 MiB.
A Trainer checkpoint's own state (optimizer.pt, scheduler.pt, rng_state*.pth,
training_args.bin, scaler.pt) is not weights: it is neither hashed nor read ahead (an
optimizer.pt is twice a model's fp32 size). The sweep's read-ahead (sweep.Prefetcher) hashes
the files it reads and leaves the digests here (`remember_digest`), so `hash_weights` reads
nothing twice.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

from vibes_eval.errors import CheckpointError

__all__ = ["HASH_FULL_LIMIT", "cached_digest", "check_weights", "file_key", "hash_files", "hash_weights", "remember_digest",
           "trainer_state", "weight_files"]

HASH_FULL_LIMIT = 4 << 30  # weight files above this total are hashed by samples (size + head + tail)
_WEIGHTS = ("*.safetensors", "*.bin", "*.pt", "*.pth")
TRAINER_STATE = frozenset({"optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin"})
"""Files a transformers Trainer saves beside the weights (with rng_state*.pth): never loaded as weights."""


def trainer_state(name: str) -> bool:
    """True for a file name that a Trainer saves as its own state (optimizer.pt, rng_state_3.pth, ...)."""
    return name in TRAINER_STATE or (name.startswith("rng_state") and name.endswith(".pth"))


def weight_files(ckpt: Path) -> list[Path]:
    """The folder's weight files, sorted (Trainer state excluded)."""
    return sorted(p for pat in _WEIGHTS for p in Path(ckpt).glob(pat) if p.is_file() and not trainer_state(p.name))


_digests: dict[tuple[str, int, int], str] = {}
_digests_lock = threading.Lock()


def file_key(path: Path) -> tuple[str, int, int]:
    """(resolved path, size, mtime): a digest is reused only while all three are unchanged."""
    st = Path(path).stat()
    return str(Path(path).resolve()), st.st_size, st.st_mtime_ns


def remember_digest(key: tuple[str, int, int], digest: str) -> None:
    """Keep the `digest` of the file that `file_key` described as `key`, for `hash_weights`."""
    with _digests_lock:
        _digests[key] = digest


def cached_digest(path: Path) -> str | None:
    """The `sha256:` digest the read-ahead computed for this file, if its size and mtime are unchanged."""
    try:
        key = file_key(path)
    except OSError:
        return None
    with _digests_lock:
        return _digests.get(key)


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
    """sha256 per weight file of `ckpt`, by file name (sampled above HASH_FULL_LIMIT in total)."""
    return hash_files(weight_files(ckpt))


def hash_files(files: list[Path]) -> dict[str, str]:
    """sha256 per file in `files`, by file name (sampled above HASH_FULL_LIMIT in total)."""
    total = sum(f.stat().st_size for f in files)
    out = {}
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
