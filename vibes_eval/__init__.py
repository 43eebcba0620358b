"""vibes-eval: a one-minute smoke test for LLaVA-family checkpoints.

The public names are imported lazily (PEP 562), so `import vibes_eval` and `vibes-eval --help`
load neither pydantic's models nor torch until a name is used.
"""

from __future__ import annotations

import importlib

__all__ = [
    "Scorecard",
    "Signal",
    "Status",
    "Suite",
    "__version__",
    "load_scorecard",
    "load_suite",
    "run_suite",
]

__version__ = "0.1.0"

_LAZY = {
    "Scorecard": "vibes_eval.records:Scorecard",
    "Signal": "vibes_eval.records:Signal",
    "Status": "vibes_eval.records:Status",
    "Suite": "vibes_eval.suite:Suite",
    "load_scorecard": "vibes_eval.records:load_scorecard",
    "load_suite": "vibes_eval.suite:load_suite",
    "run_suite": "vibes_eval.runner:run_suite",
}


def __getattr__(name: str):
    if name in _LAZY:
        module, attr = _LAZY[name].split(":")
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'vibes_eval' has no attribute {name!r}")
