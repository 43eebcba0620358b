"""The `vibes` pytest fixture: a gate kept in pytest, run by pytest itself (pytester) on the toy zoo."""

from __future__ import annotations

import pytest
from helpers import REPO

pytest_plugins = ("pytester",)



def test_entry_point_is_declared():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert data["project"]["entry-points"]["pytest11"] == {"vibes_eval.pytest_plugin": "vibes_eval.integrations.pytest_plugin"}


def test_the_fixture_in_a_user_test_file(pytester, zoo_dir):
    pytester.makepyfile(test_gate=f"""
        def test_healthy(vibes):
            card = vibes.run({str(zoo_dir / "healthy")!r})
            card.assert_healthy()
            assert card.verdict.exit_code == 0 and card.healthy and (card.report / "scorecard.html").is_file()

        def test_broken(vibes):
            card = vibes.run({str(zoo_dir / "zero-projector")!r})
            card.assert_healthy()

        def test_bad_option(vibes):
            import pytest
            from vibes_eval.errors import VibesUsageError
            with pytest.raises(VibesUsageError, match="unknown option 'suit'"):
                vibes.run("x", suit="a.yaml")
    """)
    result = pytester.runpytest_inprocess("-p", "vibes_eval.pytest_plugin", "-q", "-p", "no:cacheprovider")  # its name since 0.1
    result.assert_outcomes(passed=2, failed=1)
    text = result.stdout.str()
    # the failure message is the verdict's summary lines, not a traceback into vibes-eval
    assert "AssertionError: vibes-eval FAIL:" in text and "(projector_disconnected" in text
    assert "Projector" in text or "projector" in text.split("AssertionError", 1)[1]
    assert "integrations/pytest_plugin.py" not in text.split("test_broken", 1)[1].split("short test summary", 1)[0]


def test_fixture_options_are_checked_as_the_flags_are(tmp_path):
    from vibes_eval.errors import VibesUsageError
    from vibes_eval.integrations.pytest_plugin import Vibes

    vibes = Vibes(tmp_path)
    with pytest.raises(VibesUsageError, match="dtype: 'float8' is not one of float32, bfloat16, float16"):
        vibes.run(tmp_path / "nowhere", dtype="float8")
    with pytest.raises(VibesUsageError, match="batch_size: expected a whole number, got 'four'"):
        vibes.run(tmp_path / "nowhere", batch_size="four")
    with pytest.raises(VibesUsageError, match="'devices' is an option of a sweep"):
        vibes.run(tmp_path / "nowhere", devices="cpu,cpu")
    assert not any(tmp_path.iterdir())  # refused before any report folder was made
