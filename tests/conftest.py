"""Shared fixtures: the toy zoo, trained once per machine (cached by factory version)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def zoo(tmp_path_factory):
    """A folder with every toy variant as a checkpoint folder, and the zoo's build info."""
    from vibes_eval.toy.factory import build
    from vibes_eval.toy.variants import VARIANTS

    out = tmp_path_factory.mktemp("zoo")
    info = build(out, list(VARIANTS), seed=0, log=lambda message: None)
    return out, info


@pytest.fixture(scope="session")
def zoo_dir(zoo):
    return zoo[0]
