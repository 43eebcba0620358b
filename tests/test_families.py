"""Family records: profiles, detection, the budget and the README read one source."""

from __future__ import annotations

import json
import re

import pytest
from helpers import REPO

from vibes_eval.adapters import families
from vibes_eval.adapters.detect import detect, load_profile, profiles
from vibes_eval.budget.checkpoint import budget_for_checkpoint
from vibes_eval.errors import BudgetError, UsageError


def test_bundled_profiles_inherit_from_their_family():
    for profile in profiles().values():
        if profile.family is None:
            # a server (no folder to detect), or a checkpoint's own code (--trust-remote-code: no family of ours)
            assert profile.loader in ("openai", "sglang") or (profile.name, profile.loader) == ("remote-code", "hf")
            continue
        fam = families.FAMILIES[profile.family]
        assert (profile.loader, tuple(profile.architectures), profile.template, tuple(profile.stop_strings)) == (
            fam.loader,
            fam.architectures,
            fam.template,
            fam.stop_strings,
        )


def test_a_profile_overrides_what_it_states(tmp_path):
    path = tmp_path / "fork.yaml"
    path.write_text("name: fork\nfamily: llava-repo\ntemplate: llava_llama_2\n")
    fork = load_profile(path)
    assert (
        fork.template == "llava_llama_2"
        and fork.loader == "llava_repo"
        and "LlavaLlamaForCausalLM" in fork.architectures
    )
    path.write_text("name: bad\nfamily: llava-9\n")
    with pytest.raises(UsageError, match="unknown family 'llava-9'"):
        load_profile(path)


def test_every_served_architecture_is_detected_and_budgeted_by_its_family(tmp_path):
    for arch, name in families.HF_ARCHITECTURES.items():
        (tmp_path / "config.json").write_text(json.dumps({"architectures": [arch]}))
        assert detect(tmp_path).family == name
    from vibes_eval.budget import checkpoint as budget_checkpoint

    assert budget_checkpoint._HF_FAMILIES == {a: families.FAMILIES[f].budget_family for a, f in families.HF_ARCHITECTURES.items()}


def test_detection_and_budget_share_the_original_format_rule(tmp_path):
    (tmp_path / "config.json").write_text(
        json.dumps({"architectures": ["LlamaForCausalLM"], "mm_projector_type": "linear"})
    )
    assert detect(tmp_path).family == "llava-repo"
    with pytest.raises(BudgetError, match="mm_vision_tower"):  # the budget reads it as the original format too
        budget_for_checkpoint(tmp_path)


def test_the_readme_names_the_served_architectures():
    text = (REPO / "README.md").read_text()
    served = re.search(r"Served now: (.*?)loaded offline", text, re.DOTALL).group(1)
    for arch in families.HF_ARCHITECTURES:
        assert arch.replace("LlavaNextVideoForConditionalGeneration", "NeXT-Video") in served or arch in served, arch


def test_only_the_llava_model_type_takes_the_prefix_path():
    assert (
        families.prefix_path("llava")
        and not families.prefix_path("llava_next")
        and not families.prefix_path("llava_onevision")
    )
