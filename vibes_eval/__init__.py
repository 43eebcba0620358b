"""vibes-eval: a one-minute smoke test for LLaVA-family checkpoints.

The public API, in one place (everything else is an implementation module):

    from vibes_eval import RunOptions, evaluate

    sc = evaluate("ckpt/", options=RunOptions(device="cpu"), baseline="reports/release/")
    raise SystemExit(sc.verdict.exit_code)

- `evaluate`, `RunOptions`: the one way in (vibes_eval.api, vibes_eval.options);
- `open_adapter`, `AdapterSpec`, `Adapter`: a model behind the Adapter interface (vibes_eval.adapters);
- `load_suite`, `Suite`: suites; `load_scorecard`, `Scorecard`, `Signal`, `Status`: results;
- `check_answers`: the text probes on answers another tool generated (vibes_eval.answers);
- the error classes of vibes_eval.errors, each with its exit code.

The names are imported lazily (PEP 562), so `import vibes_eval` and `vibes-eval --help` load
neither pydantic's models nor torch until a name is used.
"""

from __future__ import annotations

import importlib

from vibes_eval.resources import VERSION as __version__  # noqa: F401 - the package version

_LAZY = {
    "evaluate": "vibes_eval.api",
    "RunOptions": "vibes_eval.options",
    "open_adapter": "vibes_eval.adapters.opening",
    "AdapterSpec": "vibes_eval.adapters.base",
    "Adapter": "vibes_eval.adapters.base",
    "load_suite": "vibes_eval.suite.schema",
    "Suite": "vibes_eval.suite.schema",
    "load_scorecard": "vibes_eval.records",
    "Scorecard": "vibes_eval.records",
    "Signal": "vibes_eval.records",
    "Status": "vibes_eval.records",
    "check_answers": "vibes_eval.answers",
    **{name: "vibes_eval.errors" for name in (
        "VibesError", "UsageError", "SuiteError", "CheckpointError", "RemoteError", "EvaluationFailed", "BaselineError",
        "BudgetError", "CompareError", "VibesUsageError", "AnswerFileError",
    )},
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'vibes_eval' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
