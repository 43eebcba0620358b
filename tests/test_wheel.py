"""The installed package works outside the clone: a wheel in a fresh venv, run from an empty folder.

The wheel is built from a copy of the source (nothing is written into the clone), installed
with --no-deps into a new venv that reaches this test venv's packages (torch, transformers, ...)
through a .pth file, so nothing is downloaded. Then, from a temporary working directory:
`run` on the toy checkpoint writes ./reports/..., and validate, budget and compare work there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest
from helpers import REPO

SOURCES = ("pyproject.toml", "README.md", "vibes_eval", "suites", "adapters")


def _sh(*args, cwd: Path, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["NO_COLOR"] = "1"
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The bin/ folder of a fresh venv with the wheel installed (not editable)."""
    root = tmp_path_factory.mktemp("wheel")
    src = root / "src"
    src.mkdir()
    for name in SOURCES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(
            REPO / name,
            src / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if (REPO / name).is_dir() else {}),
        )
    built = _sh(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "-q",
        "-w",
        root / "dist",
        src,
        cwd=root,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (root / "dist").glob("*.whl")
    env = root / "venv"
    venv.create(env, with_pip=False)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    # this venv's dependencies, without their .pth hooks (so the clone's editable install stays out of sight)
    (purelib / "test-venv-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    py = env / "bin" / "python"
    done = _sh(sys.executable, "-m", "pip", "--python", py, "install", "--no-deps", "--no-index", "-q", wheel, cwd=root)
    assert done.returncode == 0, done.stderr
    return env / "bin"


def test_the_wheel_carries_suites_images_and_profiles(installed, tmp_path):
    code = (
        "import vibes_eval, vibes_eval.resources as r; print(vibes_eval.__file__); "
        "print(r.bundled_suite('shapes')); print(sorted(p.name for p in r.profiles_dir().glob('*.yaml')))"
    )
    out = _sh(installed / "python", "-c", code, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    where, shapes, profiles = out.stdout.splitlines()
    assert str(REPO) not in where and "site-packages" in where  # the installed copy, not the clone
    assert Path(shapes).is_file() and (Path(shapes).parent / "images" / "shapes" / "describe-two.png").is_file()
    assert "llava.yaml" in profiles and "llava-repo.yaml" in profiles
    valid = _sh(installed / "vibes-eval", "validate", shapes, cwd=tmp_path)
    assert valid.returncode == 0 and valid.stdout.startswith("OK: shapes"), valid.stderr
    budget = _sh(installed / "vibes-eval", "budget", "--family", "llava", cwd=tmp_path)
    assert budget.returncode == 0 and "576" in budget.stdout, budget.stderr


def test_run_from_an_empty_folder_writes_reports_there(installed, zoo_dir, tmp_path):
    work = tmp_path / "project"
    work.mkdir()
    ckpt = zoo_dir / "healthy"
    ran = _sh(installed / "vibes-eval", "run", ckpt, "--quiet", cwd=work)
    assert ran.returncode == 0, ran.stderr
    (report,) = (work / "reports").iterdir()
    assert report.name.startswith("healthy-")
    sc = json.loads((report / "scorecard.json").read_text())
    assert sc["suite"]["name"] == "shapes" and "site-packages" in sc["suite"]["path"]  # the bundled suite
    assert sc["verdict"]["exit_code"] == 0 and (report / "scorecard.html").is_file()
    cmp = _sh(installed / "vibes-eval", "compare", report, report, "--html", "both.html", cwd=work)
    assert cmp.returncode == 0 and (work / "both.html").is_file(), cmp.stderr


def test_pyproject_lists_every_package():
    """The package list is explicit (the data folders are mapped in): a new subpackage must be added to it."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "vibes_eval").rglob("__init__.py")}
    assert on_disk | {"vibes_eval.suite.bundled", "vibes_eval.adapters.profiles"} == listed
