"""`--trust-remote-code`: the model class from a checkpoint folder's own code files, never downloaded.

A folder whose config.json names its classes in `auto_map` (TinyLLaVA, Bunny, MobileVLM, ...) is
refused by default. With the flag, the class is imported from the folder's `*.py` files through
transformers' own dynamic-module loader (the folder is local: nothing is fetched), every code file
is hashed into the fingerprint (`remote_code`), and one line on stderr says the folder's code runs.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from vibes_eval.errors import CheckpointError

__all__ = ["AUTO_CLASSES", "code_hashes", "remote_class"]

AUTO_CLASSES = ("AutoModelForImageTextToText", "AutoModelForVision2Seq", "AutoModelForCausalLM", "AutoModel")
"""auto_map entries tried in order: the first a vision-language model would register under."""


def code_hashes(folder: Path) -> dict[str, str]:
    """sha256 of every `*.py` file in `folder`, by name."""
    return {p.name: "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(Path(folder).glob("*.py")) if p.is_file()}


def remote_class(folder: Path, cfg: dict):
    """(model class, code hashes) from the folder's auto_map; CheckpointError in one line when it cannot be had."""
    from transformers.dynamic_module_utils import get_class_from_dynamic_module

    folder = Path(folder)
    where = folder / "config.json"
    auto = cfg.get("auto_map")
    if not isinstance(auto, dict):
        raise CheckpointError(f"{where}: auto_map: missing, so there is no code of its own to trust")
    ref = next((auto[k] for k in AUTO_CLASSES if isinstance(auto.get(k), str)), None)
    if ref is None:
        raise CheckpointError(f"{where}: auto_map: no model class ({', '.join(AUTO_CLASSES)}); it names {', '.join(auto) or 'nothing'}")
    if "--" in ref:  # "repo--module.Class": code from another hub repo, which would be downloaded
        raise CheckpointError(f"{where}: auto_map: {ref} lives in another repository; vibes-eval downloads nothing")
    module = ref.rsplit(".", 1)[0]
    if not (folder / f"{module}.py").is_file():
        raise CheckpointError(f"{where}: auto_map: {ref}: {module}.py is not in the folder")
    hashes = code_hashes(folder)
    try:
        cls = get_class_from_dynamic_module(ref, str(folder), local_files_only=True)
    except (ImportError, OSError, AttributeError, SyntaxError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"{folder / (module + '.py')}: cannot import {ref}: {type(e).__name__}: {first}") from None
    print(f"vibes-eval: {folder}: running the folder's own code (--trust-remote-code): "
          + ", ".join(f"{k} {v[:19]}" for k, v in hashes.items()), file=sys.stderr)
    return cls, hashes
