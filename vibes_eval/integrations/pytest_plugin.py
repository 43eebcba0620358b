"""The `vibes` pytest fixture, for teams that keep their gates in pytest (registered as a `pytest11` plugin).

    def test_checkpoint(vibes):
        card = vibes.run("ckpt/")
        card.assert_healthy()

`vibes.run(checkpoint, **options)` is `vibes-eval run CKPT --quiet` (options: any field of
`vibes_eval.RunOptions`, such as suite, template, device, dtype, baseline, base, vision_tower,
adapter) with the reports in the test's temporary folder (or `out=`); it returns a `Card`: the
Scorecard's fields plus `assert_healthy()`, whose
assertion message is the verdict's summary lines. Bad usage (an unknown flag value, a broken
suite) raises `VibesUsageError`. This module imports neither torch nor transformers: pytest
loads it at start-up in every project that has vibes-eval installed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from vibes_eval.errors import EXIT_USAGE, UsageError, VibesUsageError

_NOT_FOR_ONE = {"devices", "shard", "prefetch", "run_id", "quiet", "out", "baseline_card"}
"""RunOptions fields `vibes.run` refuses: a sweep's, the command's own, or `out=` given apart."""

__all__ = ["Card", "Vibes", "VibesUsageError", "vibes"]

class Card:
    """A Scorecard (every field readable: `card.verdict`, `card.prompts`, ...) with assertions."""

    def __init__(self, scorecard, report: Path):
        self.scorecard, self.report = scorecard, report

    def __getattr__(self, name):
        return getattr(self.__dict__["scorecard"], name)

    @property
    def healthy(self) -> bool:
        """The gate passed (exit code 0)."""
        return self.scorecard.verdict.exit_code == 0

    def message(self) -> str:
        v = self.scorecard.verdict
        head = f"vibes-eval {v.status.value.upper()}: {self.scorecard.checkpoint}"
        if v.diagnoses:
            head += f" ({', '.join(v.diagnoses)})"
        return "\n".join([head, *v.summary, f"report: {self.report / 'scorecard.html'}"])

    def assert_healthy(self) -> None:
        """Fail the test unless the gate passed; the message is the verdict's summary lines."""
        __tracebackhide__ = True
        if not self.healthy:
            raise AssertionError(self.message())

    def assert_diagnosed(self, *diagnoses: str) -> None:
        """Fail the test unless every one of `diagnoses` was made."""
        __tracebackhide__ = True
        missing = [d for d in diagnoses if d not in self.scorecard.verdict.diagnoses]
        if missing:
            raise AssertionError(f"not diagnosed: {', '.join(missing)}\n{self.message()}")

    def __repr__(self) -> str:
        return f"<Card {self.scorecard.verdict.status.value} {self.scorecard.checkpoint}>"


class Vibes:
    """What the `vibes` fixture gives a test: `run(checkpoint, **options) -> Card`."""

    def __init__(self, reports: Path):
        self.reports = Path(reports)
        self._n = 0

    def run(self, checkpoint, *, out=None, **options) -> Card:
        """Run the suite on `checkpoint` (a folder); options as `vibes-eval run`'s flags (see the module docstring)."""
        from vibes_eval.cli.run import run_one
        from vibes_eval.options import RunOptions
        from vibes_eval.records import load_scorecard

        refused = sorted(set(options) & _NOT_FOR_ONE)
        if refused:
            raise VibesUsageError(f"vibes.run: {refused[0]!r} is an option of a sweep or a command, not of one checkpoint")
        try:  # values are converted and checked as `run`'s flags would be (batch_size="4" is 4; a bad dtype is refused)
            opts = RunOptions(quiet=True).replace(**options)
        except (TypeError, UsageError) as e:
            raise VibesUsageError(f"vibes.run: {e}") from None
        self._n += 1
        report = Path(out) if out else self.reports / f"{self._n}-{Path(checkpoint).name or 'checkpoint'}"
        code = run_one(Path(checkpoint), opts, report)
        if code == EXIT_USAGE or not (report / "scorecard.json").is_file():
            raise VibesUsageError(f"vibes.run({str(checkpoint)!r}) exited {code} (see its stderr)")
        return Card(load_scorecard(report), report)


@pytest.fixture
def vibes(tmp_path_factory) -> Vibes:
    """Run vibes-eval on a checkpoint from a test: `vibes.run("ckpt/").assert_healthy()`."""
    return Vibes(tmp_path_factory.mktemp("vibes"))
