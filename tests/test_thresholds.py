"""One thresholds module: the probes, the verdict, bench/detection.py and the README table agree."""

from __future__ import annotations

from helpers import REPO

from vibes_eval.judge import thresholds
from vibes_eval.probes import grounding
from vibes_eval.probes import projector as loader
from vibes_eval.probes.grounding import probe_image_gain, probe_likelihood


def _readme_signal_table() -> dict[str, list[str]]:
    lines = (REPO / "README.md").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| signal | what it is | fails when |"))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").replace("\\|", "¦").split("|")]
        rows[cells[0]] = cells
    return rows


def test_the_readme_table_states_the_thresholds_in_the_code():
    rows = _readme_signal_table()
    for signal, words in thresholds.README_FAILS_WHEN.items():
        assert rows[signal][2].startswith(words), (signal, rows[signal][2], words)
    for name, value in thresholds.HEALTHY_TOY.items():  # the healthy toy column quotes the same numbers as the reasons
        assert rows[f"`{name}`"][3].split()[0] == f"{value}", name


def test_the_probes_read_the_thresholds_module():
    assert (
        grounding.GAIN_FAIL == thresholds.IMAGE_GAIN.value and loader.NORM_RATIO_LOW == thresholds.NORM_RATIO_LOW.value
    )
    assert probe_likelihood({"a": thresholds.LIKELIHOOD.value + 0.01}).status.value == "pass"
    assert probe_likelihood({"a": thresholds.LIKELIHOOD.value - 0.01}).status.value == "fail"
    gain = thresholds.IMAGE_GAIN.value
    just_below = probe_image_gain({"a": {"a": gain - 0.01, "b": gain - 0.02}}, {"a": 0.0})
    assert just_below.status.value == "fail" and just_below.evidence["threshold"] == gain


def test_threshold_sides():
    t = thresholds.Threshold(1.0, ">=", "nats")
    assert t.failed(1.0) and not t.failed(0.99) and t.words() == ">= 1 nats"


def test_bench_detection_reads_the_thresholds_module():
    text = (REPO / "bench" / "detection.py").read_text()
    assert "from vibes_eval.judge import thresholds" in text and "grounding." not in text
