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


def pytest_configure(config):
    """Children of this process start with SIGINT at its default, even when the suite was started with it ignored.

    A shell without job control starts a background job (`bash scripts/test.sh &`, a CI step) with SIGINT
    ignored, every child inherits that, and Python keeps it: the tests that press Ctrl-C on a child would
    wait for nothing (issue 23). A Python handler here is reset to the default in each child at exec.
    """
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
