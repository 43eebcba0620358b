"""Checkpoint layouts a trainer writes (issue 21): PEFT adapters, DeepSpeed / FSDP folders, empty and quantized weights.

Each layout is built by the toy factory (`toy build --format peft-lora|distributed`); the healthy
ones pass, the broken twins are diagnosed, and what cannot load is one line with exit 3.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vibes_eval.cli.main import main
from vibes_eval.errors import CheckpointError


@pytest.fixture(scope="module")
def peft_dir(zoo_dir, tmp_path_factory):
    from vibes_eval.toy.peft_format import write_peft

    return write_peft(zoo_dir / "healthy", zoo_dir / "disconnected", tmp_path_factory.mktemp("peft") / "peft-lora")


@pytest.fixture(scope="module")
def dist_dir(zoo_dir, tmp_path_factory):
    from vibes_eval.toy.distributed_format import write_distributed

    return write_distributed(zoo_dir / "healthy", tmp_path_factory.mktemp("dist") / "distributed")


def _scorecard(out: Path) -> dict:
    return json.loads((out / "scorecard.json").read_text())


def _run(ckpt: Path, out: Path, *extra: str) -> int:
    return main(["run", str(ckpt), "--suite", "shapes", "--out", str(out), "--quiet", *extra])


# -- PEFT adapters ----------------------------------------------------------------------------------


def test_peft_healthy_adapter_merges_into_its_base_and_passes(peft_dir, tmp_path):
    assert _run(peft_dir["healthy"], tmp_path / "r") == 0
    fp = _scorecard(tmp_path / "r")["fingerprint"]
    assert fp["peft"]["base"] == str(peft_dir["base"].resolve()) and fp["peft"]["projector_saved"] is True
    assert fp["peft"]["modules_to_save"] == ["multi_modal_projector"] and fp["peft"]["merged"] is True
    assert set(fp["weights"]) == {"base/model.safetensors", "adapter/adapter_model.safetensors"}
    assert fp["visual_tokens"] == 16 and fp["visual_token_budget"].startswith("llava: 16 tokens")
    assert main(["budget", str(peft_dir["healthy"])]) == 0
    assert all(v.startswith("sha256:") for v in fp["weights"].values())


def test_peft_merge_restores_the_trained_weights(peft_dir, zoo_dir):
    """base/ alone is far from the healthy toy (offset attention, fresh projector); base + adapter is it."""
    import torch
    from transformers import LlavaForConditionalGeneration

    from vibes_eval.adapters.peft_adapter import find_adapter
    from vibes_eval.adapters.peft_merge import apply_adapter

    healthy = LlavaForConditionalGeneration.from_pretrained(zoo_dir / "healthy").state_dict()
    base = LlavaForConditionalGeneration.from_pretrained(peft_dir["base"]).state_dict()
    q = "model.language_model.layers.0.self_attn.q_proj.weight"
    assert (base[q] - healthy[q]).abs().max() > 0.1
    adapter = find_adapter(peft_dir["healthy"])
    merged = apply_adapter(LlavaForConditionalGeneration.from_pretrained(adapter.base), adapter).state_dict()
    assert max((merged[k] - healthy[k]).abs().max().item() for k in healthy) < 1e-5
    assert not any("lora_" in k for k in merged)
    assert torch.equal(merged["model.multi_modal_projector.linear_1.weight"], healthy["model.multi_modal_projector.linear_1.weight"])


def test_peft_adapter_without_its_projector_is_diagnosed(peft_dir, tmp_path):
    assert _run(peft_dir["no-projector"], tmp_path / "r") == 1
    sc = _scorecard(tmp_path / "r")
    assert sc["verdict"]["diagnoses"] == ["projector_disconnected"]
    assert any("modules_to_save" in line for line in sc["verdict"]["summary"])
    assert sc["fingerprint"]["peft"]["projector_saved"] is False


def test_peft_hub_id_base_without_base_flag_is_one_line(peft_dir, tmp_path, capsys):
    assert _run(peft_dir["hub-base"], tmp_path / "r") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'llava-hf/llava-1.5-7b-hf' is a hub id" in err[0] and "--base DIR" in err[0]
    assert "Traceback" not in err[0]


def test_peft_base_flag_overrides_a_hub_id(peft_dir, tmp_path):
    assert _run(peft_dir["hub-base"], tmp_path / "r", "--base", str(peft_dir["base"])) == 0
    assert _scorecard(tmp_path / "r")["fingerprint"]["peft"]["base"] == str(peft_dir["base"])


def test_peft_adapter_tensors_that_fit_no_module_are_named(peft_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    from vibes_eval.adapters.detect import detect_checkpoint
    from vibes_eval.adapters.peft_merge import apply_adapter

    bad = tmp_path / "bad"
    shutil.copytree(peft_dir["healthy"], bad)
    weights = load_file(bad / "adapter_model.safetensors")
    weights["base_model.model.model.nowhere.q_proj.lora_A.weight"] = next(iter(weights.values())).clone()
    save_file(weights, bad / "adapter_model.safetensors", metadata={"format": "pt"})
    det = detect_checkpoint(bad)
    from transformers import LlavaForConditionalGeneration

    with pytest.raises(CheckpointError, match=r"1 tensors match no module of the base \(base_model.model.model.nowhere"):
        apply_adapter(LlavaForConditionalGeneration.from_pretrained(det.peft.base), det.peft)


def test_peft_adapter_saved_with_transformers_4_key_names_loads(peft_dir, zoo_dir, tmp_path):
    """Adapters written before transformers 4.52 name language_model.model.* and multi_modal_projector.* at the top."""
    from safetensors.torch import load_file, save_file
    from transformers import LlavaForConditionalGeneration

    from vibes_eval.adapters.peft_adapter import find_adapter
    from vibes_eval.adapters.peft_merge import apply_adapter

    old = tmp_path / "old"
    shutil.copytree(peft_dir["healthy"], old)
    weights = load_file(old / "adapter_model.safetensors")
    renamed = {k.replace("base_model.model.model.language_model.", "base_model.model.language_model.model.")
                .replace("base_model.model.model.multi_modal_projector.", "base_model.model.multi_modal_projector."): v
               for k, v in weights.items()}
    assert renamed.keys() != weights.keys()
    save_file(renamed, old / "adapter_model.safetensors", metadata={"format": "pt"})
    adapter = find_adapter(old)
    merged = apply_adapter(LlavaForConditionalGeneration.from_pretrained(adapter.base), adapter).state_dict()
    healthy = LlavaForConditionalGeneration.from_pretrained(zoo_dir / "healthy").state_dict()
    assert max((merged[k] - healthy[k]).abs().max().item() for k in healthy) < 1e-5


def test_peft_base_resolution(peft_dir, tmp_path):
    from vibes_eval.adapters.peft_adapter import resolve_base

    folder = peft_dir["healthy"]
    with pytest.raises(CheckpointError, match="base_model_name_or_path: missing; pass --base DIR"):
        resolve_base(folder, {}, None)
    with pytest.raises(CheckpointError, match="'nowhere/at/all': no model folder there; pass --base DIR"):
        resolve_base(folder, {"base_model_name_or_path": "nowhere/at/all"}, None)
    with pytest.raises(CheckpointError, match=r"--base .*: not a model folder \(no config.json\)"):
        resolve_base(folder, {"base_model_name_or_path": str(peft_dir["base"])}, tmp_path)
    rel = Path("..") / "base"  # relative to the adapter folder
    assert resolve_base(folder, {"base_model_name_or_path": str(rel)}, None) == folder / rel


def test_watch_judges_each_checkpoint_of_a_lora_run(peft_dir, tmp_path):
    run = tmp_path / "run"
    for step, layout in ((1, "healthy"), (2, "no-projector")):
        dest = run / f"checkpoint-{step}"
        shutil.copytree(peft_dir[layout], dest)
        (dest / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    assert main(["watch", str(run), "--every-new", "--until-idle", "0", "--suite", "shapes"]) == 1
    trend = json.loads((run / "vibes" / "trend.json").read_text())
    assert [(e["step"], e["exit_code"]) for e in trend["entries"]] == [(1, 0), (2, 1)]


# -- distributed training outputs and empty weights -------------------------------------------------


def test_zero2_folder_with_consolidated_weights_loads(dist_dir, tmp_path):
    assert _run(dist_dir["zero2"], tmp_path / "r") == 0


@pytest.mark.parametrize("layout, needles", [
    ("zero3", ["DeepSpeed ZeRO-3 checkpoint (global_step2/: 2 rank shards) without consolidated weights",
               "python zero_to_fp32.py . . --safe_serialization"]),
    ("zero3-empty", ["model.safetensors holds only 0-element tensors", "rm model.safetensors && python zero_to_fp32.py"]),
    ("fsdp", ["FSDP sharded state dict (pytorch_model_fsdp_0/: .metadata + 1 .distcp shard)", "accelerate merge-weights "]),
    ("empty-tensors", ["model.safetensors: all 98 tensors have 0 elements", "not a model"]),
])
def test_distributed_and_empty_layouts_are_one_line(dist_dir, tmp_path, capsys, layout, needles):
    assert _run(dist_dir[layout], tmp_path / "r") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    for needle in needles:
        assert needle in err[0]
    assert _scorecard(tmp_path / "r")["verdict"]["diagnoses"] == ["load_error"]


def test_fsdp_command_is_what_accelerate_takes(dist_dir):
    """The printed command parses with accelerate's own merge-weights parser and names the shard folder."""
    import shlex

    from accelerate.commands.merge import merge_command_parser

    from vibes_eval.adapters.layouts import check_distributed

    with pytest.raises(CheckpointError) as e:
        check_distributed(dist_dir["fsdp"])
    cmd = str(e.value).split("consolidate it: ")[1].split(" (then")[0]
    words = shlex.split(cmd)
    assert words[:2] == ["accelerate", "merge-weights"]
    args = merge_command_parser().parse_args(words[2:])
    assert Path(args.checkpoint_directory) == dist_dir["fsdp"] / "pytorch_model_fsdp_0"
    assert (Path(args.checkpoint_directory) / ".metadata").is_file()


def test_fsdp_shards_are_torch_distributed_checkpoint_format(dist_dir, zoo_dir):
    """The fixture is what torch.distributed.checkpoint writes: torch reads it back without a process group."""
    import torch.distributed.checkpoint as dcp
    import torch.distributed.checkpoint.format_utils as fu
    from safetensors.torch import load_file

    state: dict = {}
    fu._load_state_dict(state, storage_reader=dcp.FileSystemReader(str(dist_dir["fsdp"] / "pytorch_model_fsdp_0")),
                        planner=fu._EmptyStateDictLoadPlanner(), no_dist=True)
    healthy = load_file(zoo_dir / "healthy" / "model.safetensors")
    assert set(state["model"]) == set(healthy)


def test_zero_command_follows_the_folders_script(tmp_path):
    from vibes_eval.adapters.layouts import zero_command

    (tmp_path / "zero_to_fp32.py").write_text('parser.add_argument("output_file", type=str)\n')
    assert zero_command(tmp_path, []).endswith("python zero_to_fp32.py . pytorch_model.bin")
    (tmp_path / "zero_to_fp32.py").unlink()
    assert "python -m deepspeed.utils.zero_to_fp32 . pytorch_model.bin (needs deepspeed)" in zero_command(tmp_path, [])


def test_a_weight_file_with_some_empty_tensors_is_not_refused(zoo_dir, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from vibes_eval.adapters.layouts import empty_weight_file

    weights = load_file(zoo_dir / "healthy" / "model.safetensors")
    save_file({**weights, "extra": torch.empty(0)}, tmp_path / "model.safetensors")
    assert empty_weight_file(tmp_path / "model.safetensors") is None
    torch.save({k: torch.empty(0) for k in weights}, tmp_path / "pytorch_model.bin")
    assert empty_weight_file(tmp_path / "pytorch_model.bin") == len(weights)


# -- quantized checkpoints --------------------------------------------------------------------------


@pytest.mark.parametrize("qc, needle", [
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "nf4"},
     "a bitsandbytes 4-bit nf4 checkpoint; loading it needs the bitsandbytes package"),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "a bitsandbytes 8-bit checkpoint"),
    ({"quant_method": "gptq", "bits": 4, "group_size": 128},
     "a gptq 4-bit checkpoint; loading it needs the optimum and gptqmodel packages"),
    ({"quant_method": "awq", "bits": 4, "version": "gemm"}, "a awq 4-bit checkpoint; loading it needs the gptqmodel package"),
])
def test_quantized_checkpoint_without_its_package_names_it(zoo_dir, tmp_path, capsys, qc, needle):
    from vibes_eval.adapters.layouts import QUANT_PACKAGES, _importable

    if all(_importable(m) for m in QUANT_PACKAGES[qc["quant_method"]]):
        pytest.skip(f"{qc['quant_method']} is installed here")
    ckpt = tmp_path / "q"
    shutil.copytree(zoo_dir / "healthy", ckpt)
    cfg = json.loads((ckpt / "config.json").read_text())
    (ckpt / "config.json").write_text(json.dumps({**cfg, "quantization_config": qc}))
    assert _run(ckpt, tmp_path / "r") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0] and "config.json: quantization_config" in err[0]
    assert "a bug" not in err[0]


# -- the rest of the family and the original repo's mpt template ------------------------------------


@pytest.fixture(scope="module")
def vip_dir(zoo_dir, tmp_path_factory):
    from vibes_eval.toy.family_format import write_vipllava

    return write_vipllava(zoo_dir / "healthy", tmp_path_factory.mktemp("vip") / "vipllava")


def test_vipllava_toy_passes_and_its_disconnected_twin_is_diagnosed(vip_dir, tmp_path):
    from vibes_eval.budget.checkpoint import budget_for_checkpoint

    assert _run(vip_dir["healthy"], tmp_path / "h") == 0
    fp = _scorecard(tmp_path / "h")["fingerprint"]
    assert fp["profile"] == "vipllava" and fp["architecture"] == "VipLlavaForConditionalGeneration"
    assert fp["visual_tokens"] == budget_for_checkpoint(vip_dir["healthy"]).tokens(64, 64) == 16
    assert _run(vip_dir["disconnected"], tmp_path / "d") == 1
    assert _scorecard(tmp_path / "d")["verdict"]["diagnoses"] == ["projector_disconnected"]


def test_vipllava_without_chat_template_falls_back_to_its_template(vip_dir):
    from vibes_eval.adapters.detect import detect_checkpoint

    det = detect_checkpoint(vip_dir["healthy"])
    assert det.profile.name == "vipllava" and det.profile.template == "llava_v0"
    assert det.profile.stop_strings == ["###", "</s>"]


def test_video_llava_is_detected_and_counted_and_says_what_it_lacks(tmp_path, zoo_dir, capsys):
    """A tiny random Video-LLaVA (offline): its profile, the budget's count, and (without torchvision) one line naming it."""
    import transformers
    from transformers import (
        AutoTokenizer,
        CLIPVisionConfig,
        LlamaConfig,
        VideoLlavaConfig,
        VideoLlavaForConditionalGeneration,
        VideoLlavaImageProcessor,
    )

    from vibes_eval.adapters.detect import detect_checkpoint
    from vibes_eval.budget.checkpoint import budget_for_checkpoint

    tok = AutoTokenizer.from_pretrained(zoo_dir / "healthy")
    tok.add_special_tokens({"additional_special_tokens": ["<video>"]})
    vc = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32, patch_size=16)
    tc = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                     vocab_size=len(tok))
    cfg = VideoLlavaConfig(vision_config=vc, text_config=tc, image_token_index=tok.convert_tokens_to_ids("<image>"),
                           video_token_index=tok.convert_tokens_to_ids("<video>"), vision_feature_layer=-2)
    ckpt = tmp_path / "vl"
    VideoLlavaForConditionalGeneration(cfg).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    VideoLlavaImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(ckpt)
    (ckpt / "processor_config.json").write_text(json.dumps({"processor_class": "VideoLlavaProcessor", "patch_size": 16,
                                                            "vision_feature_select_strategy": "default", "num_additional_image_tokens": 1}))
    det = detect_checkpoint(ckpt)
    assert det.profile.name == "video-llava" and det.profile.template == "llava-1.5-hf"
    assert budget_for_checkpoint(ckpt).tokens(32, 32) == 4  # (32 / 16)^2, CLS dropped
    if transformers.utils.is_torchvision_available():
        pytest.skip("torchvision is installed here: the processor builds")
    capsys.readouterr()  # the save's progress bars
    assert _run(ckpt, tmp_path / "r") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "VideoLlavaProcessor needs its video processor" in err[0] and "torchvision" in err[0]


def test_mpt_template_is_the_original_conv_mpt():
    from vibes_eval.adapters.templates import answer_cue, render_template

    assert render_template("mpt", "Q") == (
        "<|im_start|>system\nA conversation between a user and an LLM-based AI assistant. The assistant gives helpful and "
        "honest answers.<|im_end|><|im_start|>user\n<image>\nQ<|im_end|><|im_start|>assistant\n")
    assert answer_cue("mpt") == answer_cue("chatml_direct")  # the template-fit rows are unchanged by it


# -- --trust-remote-code ----------------------------------------------------------------------------

_REMOTE = '''"""A derivative with its own class (as TinyLLaVA, Bunny and MobileVLM ship theirs)."""
from transformers import LlavaForConditionalGeneration


class ToyRemoteLlava(LlavaForConditionalGeneration):
    pass
'''


def test_remote_code_is_refused_without_the_flag_and_runs_with_it(zoo_dir, tmp_path, capsys):
    import hashlib

    ckpt = tmp_path / "remote"
    shutil.copytree(zoo_dir / "healthy", ckpt)
    (ckpt / "modeling_toy_remote.py").write_text(_REMOTE)
    # saved under the class's own parameter names (transformers' legacy-name conversion is keyed by class name)
    from safetensors.torch import save_file
    from transformers import LlavaForConditionalGeneration

    model = LlavaForConditionalGeneration.from_pretrained(zoo_dir / "healthy")
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, ckpt / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg.update(architectures=["ToyRemoteLlava"], auto_map={"AutoModelForImageTextToText": "modeling_toy_remote.ToyRemoteLlava"})
    (ckpt / "config.json").write_text(json.dumps(cfg))
    capsys.readouterr()  # the load's progress bar
    assert _run(ckpt, tmp_path / "no") == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "ToyRemoteLlava comes with its own code (auto_map); pass --trust-remote-code" in err[0]
    assert _run(ckpt, tmp_path / "yes", "--trust-remote-code") == 0
    assert "running the folder's own code (--trust-remote-code): modeling_toy_remote.py" in capsys.readouterr().err
    fp = _scorecard(tmp_path / "yes")["fingerprint"]
    want = "sha256:" + hashlib.sha256(_REMOTE.encode()).hexdigest()
    assert fp["profile"] == "remote-code" and fp["remote_code"] == {"modeling_toy_remote.py": want}
    assert fp["architecture"] == "ToyRemoteLlava" and fp["missing_keys"] == []


def test_remote_code_from_another_repository_is_refused(zoo_dir, tmp_path):
    from vibes_eval.adapters.remote_code import remote_class

    with pytest.raises(CheckpointError, match="lives in another repository; vibes-eval downloads nothing"):
        remote_class(tmp_path, {"auto_map": {"AutoModelForCausalLM": "someone/repo--modeling_x.X"}})
    with pytest.raises(CheckpointError, match=r"modeling_x.py is not in the folder"):
        remote_class(tmp_path, {"auto_map": {"AutoModelForCausalLM": "modeling_x.X"}})
