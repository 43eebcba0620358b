"""The loader registry: loader name -> the Adapter class that serves it, imported lazily.

`LOADERS` maps a loader name (a profile's `loader:`) to `"module:Class"`; the module is
imported only when a profile naming it is opened, so `--help` and report-only commands never
import torch. Adding a loader is one line here, one module with an `Adapter` subclass, and one
profile YAML in `adapters/`. `vibes_eval.adapters.opening.open_adapter(spec)` is the one way
every caller gets an Adapter.
"""

from __future__ import annotations

import importlib

from vibes_eval.adapters.base import Adapter
from vibes_eval.errors import UsageError

__all__ = ["LOADERS", "loader_class"]

LOADERS: dict[str, str] = {
    "hf": "vibes_eval.adapters.hf.model:HFAdapter",
    "llava_repo": "vibes_eval.adapters.llava_repo.model:LlavaRepoAdapter",
    "openai": "vibes_eval.adapters.openai.model:OpenAIAdapter",
    "sglang": "vibes_eval.adapters.sglang.model:SGLangAdapter",
}
"""Loader name -> "module:Class" of its Adapter subclass, imported lazily."""


def loader_class(name: str) -> type[Adapter]:
    """The Adapter subclass registered as `name`; UsageError for a name with no loader."""
    target = LOADERS.get(name)
    if target is None:
        raise UsageError(f"loader: unknown loader {name!r}; known: {', '.join(LOADERS)}")
    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"{target}: registered as loader {name!r} but is not an Adapter subclass")
    return cls
