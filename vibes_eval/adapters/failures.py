"""One line for any failure while loading or preparing a checkpoint (exit 3, never a traceback).

The loaders raise CheckpointError for what they anticipate; this names everything else: a
missing package with the command that installs it, else the exception type and its first line.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["PACKAGES", "load_failure", "missing_package", "tokenizer_packages"]

PACKAGES = {  # a name in an ImportError -> what to install
    "sentencepiece": "pip install sentencepiece protobuf",
    "protobuf": "pip install sentencepiece protobuf",
    "google.protobuf": "pip install sentencepiece protobuf",
    "tiktoken": "pip install tiktoken",
    "peft": "pip install peft",
    "timm": "pip install timm",
    "torchvision": "pip install torchvision (a build matching your torch)",
}


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0].strip() if text else ""


def missing_package(e: BaseException) -> str | None:
    """'the `X` package is missing (pip install X)' when `e` is an ImportError naming a known package."""
    if not isinstance(e, ImportError):
        return None
    text = " ".join(str(e).split()).lower()
    names = [getattr(e, "name", None) or ""] + list(PACKAGES)
    for pkg in names:
        if pkg and pkg in PACKAGES and (pkg == getattr(e, "name", None) or pkg in text):
            return f"the `{pkg.split('.')[-1]}` package is missing ({PACKAGES[pkg]})"
    if getattr(e, "name", None):
        return f"the `{e.name}` package is missing (pip install {e.name.split('.')[0]})"
    return None


def load_failure(ckpt: Path | str, e: BaseException) -> str:
    """`CKPT: cannot load: ...` in one line, for an exception no loader anticipated."""
    pkg = missing_package(e)
    if pkg:
        return f"{ckpt}: cannot load: {pkg}"
    detail = _first_line(e)[:200]
    what = f"{type(e).__name__}: {detail}" if detail else type(e).__name__
    return f"{ckpt}: cannot load: {what} (a bug or an unsupported layout: please report it with this line)"


def tokenizer_packages(folder: Path) -> str | None:
    """Why the tokenizer in `folder` cannot load here: a tokenizer.model-only folder without sentencepiece/protobuf.

    transformers then reports a misleading "`tiktoken` is required to read a `tiktoken` file".
    """
    import importlib.util

    folder = Path(folder)
    if (folder / "tokenizer.json").is_file() or not (folder / "tokenizer.model").is_file():
        return None
    needed = (("sentencepiece", "sentencepiece"), ("protobuf", "google.protobuf"))
    lacking = [name for name, mod in needed if not _importable(importlib.util, mod)]
    if not lacking:
        return None
    return (f"{folder / 'tokenizer.model'}: a sentencepiece tokenizer (no tokenizer.json) needs the "
            f"{' and '.join(lacking)} package{'s' if len(lacking) > 1 else ''} (pip install sentencepiece protobuf)")


def _importable(util, module: str) -> bool:
    try:
        return util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package (google) is missing
        return False
