"""The package's data: the bundled suites and adapter profiles, wherever vibes-eval is installed.

In the clone they are the top-level `suites/` and `adapters/` folders; pyproject.toml maps
them into the package as `vibes_eval.suite.bundled` and `vibes_eval.adapters.profiles`, so a wheel carries
them and an editable install reads the clone's folders. Read with importlib.resources; a
source tree used without installing (PYTHONPATH=clone) falls back to the clone's folders.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

__all__ = ["BUNDLED_SUITES", "TOY_MARKER", "VERSION", "bundled_suite", "cache_root", "default_suite", "profiles_dir", "suites_dir"]

VERSION = "0.1.0"
"""The package's version (`vibes_eval.__version__`; pyproject.toml says the same)."""

TOY_MARKER = "vibes-eval-toy.json"
"""The file every toy checkpoint carries (vibes_eval.toy writes it): `run` picks the shapes suite for it."""

_SOURCE = {"vibes_eval.suite.bundled": "suites", "vibes_eval.adapters.profiles": "adapters"}


def _data_dir(package: str) -> Path:
    try:
        root = importlib.resources.files(package)
    except ModuleNotFoundError:  # a source tree on PYTHONPATH, not installed: the clone's folder
        return Path(__file__).resolve().parents[1] / _SOURCE[package]
    path = Path(str(root))
    if not path.is_dir():  # a zipped install: vibes-eval reads suites and images as files
        raise RuntimeError(f"{package}: package data is not a folder on disk ({root}); install vibes-eval unzipped")
    return path


def suites_dir() -> Path:
    """The folder of the bundled suites (default.yaml, shapes.yaml) and their images."""
    return _data_dir("vibes_eval.suite.bundled")


def profiles_dir() -> Path:
    """The folder of the bundled adapter profiles (*.yaml)."""
    return _data_dir("vibes_eval.adapters.profiles")


BUNDLED_SUITES = ("default", "shapes")
"""The suites the package ships; `--suite NAME` finds them when no file NAME exists."""


def bundled_suite(name: str) -> Path:
    """The bundled suite `name` (`default`, `shapes`) as a file path."""
    return suites_dir() / f"{name}.yaml"


def default_suite(checkpoint: Path | None) -> Path:
    """The bundled shapes suite for a toy checkpoint (it carries TOY_MARKER), else the default suite."""
    toy = checkpoint is not None and (Path(checkpoint) / TOY_MARKER).is_file()
    return bundled_suite("shapes" if toy else "default")


def cache_root() -> Path:
    """Where vibes-eval keeps what it builds once (the toy zoo, the lexicon): `$VIBES_EVAL_CACHE`, else `~/.cache/vibes-eval`."""
    return Path(os.environ.get("VIBES_EVAL_CACHE") or Path.home() / ".cache" / "vibes-eval")
