"""The package's public surface and start-up cost."""

from __future__ import annotations

import subprocess
import sys

from helpers import SHAPES

import vibes_eval


def test_all_is_sorted_and_real():
    assert vibes_eval.__all__ == sorted(vibes_eval.__all__)
    for name in vibes_eval.__all__:
        assert hasattr(vibes_eval, name), name


def _modules_after(code: str) -> set[str]:
    script = "import contextlib, io, sys\nwith contextlib.redirect_stdout(io.StringIO()):\n" + "".join(
        f"    {line}\n" for line in code.splitlines()) + "print(' '.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60)
    return set(out.stdout.split())


def test_help_imports_no_torch():
    mods = _modules_after("from vibes_eval.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert "vibes_eval.cli.main" in mods
    assert "torch" not in mods and "transformers" not in mods


def test_validate_imports_no_torch():
    mods = _modules_after(f"from vibes_eval.cli.main import main; main(['validate', {str(SHAPES)!r}])")
    assert "torch" not in mods and "transformers" not in mods


def test_python_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "vibes_eval", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "vibes-eval" in out.stdout
