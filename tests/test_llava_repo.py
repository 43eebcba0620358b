"""The original LLaVA repo format: the toy healthy checkpoint written in that layout loads and
answers exactly like its transformers-native self; what is missing is named in one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from helpers import FIXTURES, SHAPES

from vibes_eval.adapters.detect import PROFILE_DIR, detect, load_profile
from vibes_eval.errors import CheckpointError
from vibes_eval.records import Request
from vibes_eval.suite.schema import load_suite

REFERENCE = FIXTURES / "reference_configs"  # real config.json files
TOY_TEMPLATE = "llava-1.5-hf"  # the toy was trained on `USER: <image>\nQ ASSISTANT:`
PROJECTOR = ["model.mm_projector.0.bias", "model.mm_projector.0.weight", "model.mm_projector.2.bias", "model.mm_projector.2.weight"]


class NotATensor:
    """What a training script may pickle next to its tensors (an args object, say)."""


@pytest.fixture(scope="module")
def layouts(zoo_dir, tmp_path_factory):
    from vibes_eval.toy.llava_repo_format import write_llava_repo

    return write_llava_repo(zoo_dir / "healthy", tmp_path_factory.mktemp("llava-repo") / "healthy")


@pytest.fixture(scope="module")
def profile():
    return load_profile(PROFILE_DIR / "llava-repo.yaml")


@pytest.fixture(scope="module")
def requests():
    suite = load_suite(SHAPES)
    return [Request(prompt_id=p.id, image=p.path, question=p.question, max_new_tokens=suite.max_new_tokens(p)) for p in suite.prompts[:5]]


@pytest.fixture(scope="module")
def reference(zoo_dir, requests):
    """The transformers-native healthy toy and its greedy answers."""
    from vibes_eval.adapters.hf.model import HFAdapter

    ckpt = zoo_dir / "healthy"
    adapter = HFAdapter(ckpt, detect(ckpt))
    return adapter, [r.text for r in adapter.generate(requests)]


def load(ckpt, profile, **kw):
    from vibes_eval.adapters.llava_repo.model import LlavaRepoAdapter

    return LlavaRepoAdapter(ckpt, profile, **{"template": TOY_TEMPLATE, **kw})


def copy_full(layouts, dest: Path) -> Path:
    """A copy of full/ that still finds ../vision_tower."""
    shutil.copytree(layouts["full"], dest / "full")
    shutil.copytree(layouts["vision_tower"], dest / "vision_tower")
    return dest / "full"


def edit_config(folder: Path, **changes) -> None:
    cfg = json.loads((folder / "config.json").read_text())
    cfg.update(changes)
    (folder / "config.json").write_text(json.dumps(cfg))


# -- the writer --------------------------------------------------------------------------------
def test_layouts_look_like_the_original_repos(layouts):
    import torch

    full = json.loads((layouts["full"] / "config.json").read_text())
    assert full["architectures"] == ["LlavaLlamaForCausalLM"] and full["model_type"] == "llava_llama"
    assert full["mm_projector_type"] == "mlp2x_gelu" and full["mm_vision_select_layer"] == -2
    assert full["mm_vision_select_feature"] == "patch" and full["image_aspect_ratio"] == "pad"
    assert (layouts["full"] / "../vision_tower/preprocessor_config.json").resolve().is_file()
    assert sorted(p.name for p in layouts["stage1"].iterdir()) == ["config.json", "mm_projector.bin"]
    assert json.loads((layouts["stage1"] / "config.json").read_text())["architectures"] == ["LlamaForCausalLM"]
    assert sorted(torch.load(layouts["stage1"] / "mm_projector.bin", weights_only=True)) == PROJECTOR
    extra = torch.load(layouts["lora"] / "non_lora_trainables.bin", weights_only=True)
    assert sorted(extra) == ["base_model.model." + k for k in PROJECTOR]
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in layouts["lora"].iterdir()}
    assert not (layouts["full"] / "chat_template.jinja").exists()


def test_toy_build_marks_the_layouts_and_detect_finds_them(zoo_dir, tmp_path):
    from vibes_eval.resources import TOY_MARKER
    from vibes_eval.toy.llava_repo_format import build_llava_repo

    info = build_llava_repo(tmp_path, ["healthy"], log=lambda message: None)
    assert "healthy" in info["accuracy_heldout"]
    for layout in ("full", "stage1", "lora"):
        folder = tmp_path / "healthy" / layout
        assert json.loads((folder / TOY_MARKER).read_text())["layout"] == layout
        assert detect(folder).loader == "llava_repo"


@pytest.mark.skipif(not REFERENCE.is_dir(), reason="tests/fixtures/reference_configs missing")
@pytest.mark.parametrize("name, aspect", [("liuhaotian_llava-v1.5-7b", "pad"), ("liuhaotian_llava-v1.6-vicuna-7b_TRANSCRIBED", "anyres")])
def test_real_configs_convert(profile, name, aspect):
    from vibes_eval.adapters.llava_repo.model import LlavaRepoAdapter

    path = REFERENCE / name / "config.json"
    cfg = json.loads(path.read_text())
    reader = LlavaRepoAdapter.__new__(LlavaRepoAdapter)  # the config readers only, no weights
    reader.base = None
    opts = reader._options(cfg, path)
    assert (opts["projector_type"], opts["strategy"], opts["layer"], opts["aspect"]) == ("mlp2x_gelu", "default", -2, aspect)
    text = reader._text_config(cfg, path, {})
    assert (type(text).__name__, text.hidden_size, text.vocab_size, text.rope_parameters["rope_theta"]) == (
        "LlamaConfig",
        4096,
        32000,
        10000.0,
    )
    assert detect(path.parent).loader == "llava_repo"


# -- loading every layout ------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["full", "stage1", "lora"])
def test_each_layout_answers_like_the_hf_checkpoint(layouts, profile, requests, reference, layout):
    adapter = load(layouts[layout], profile, base=None if layout == "full" else layouts["base"])
    assert adapter.loading_info["missing_keys"] == [] and adapter.loading_info["unexpected_keys"] == []
    assert adapter.render_prompt("Q?") == reference[0].render_prompt("Q?")
    assert [r.text for r in adapter.generate(requests)] == reference[1]
    assert adapter.describe()["original_format"]["layout"] == layout


def test_full_layout_scorecard_matches_the_hf_one(zoo_dir, layouts, profile, reference):
    from vibes_eval.api import evaluate

    suite = load_suite(SHAPES)
    native = evaluate(reference[0], suite, label=str(zoo_dir / "healthy"))
    repo = evaluate(load(layouts["full"], profile), suite, label=str(layouts["full"]))
    assert native.verdict.exit_code == 0 and native.verdict.diagnoses == []
    assert (repo.verdict.status, repo.verdict.exit_code, repo.verdict.diagnoses) == (native.verdict.status, 0, [])
    assert [p.answer for p in repo.prompts] == [p.answer for p in native.prompts]
    assert repo.fingerprint["loader"] == "llava_repo" and repo.fingerprint["architecture"] == "LlavaLlamaForCausalLM"


def test_no_template_named_means_vicuna_v1_said_out_loud(layouts, profile, capsys):
    adapter = load(layouts["full"], profile, template=None)
    assert adapter.template_name == "vicuna_v1" and "default" in adapter.template_source
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "vicuna_v1" in err[0] and "--template" in err[0]
    assert adapter.processor.chat_template is None
    named = load(layouts["full"], profile.model_copy(update={"template": "llava_llama_2"}), template=None)
    assert (named.template_name, named.template_source) == ("llava_llama_2", "profile llava-repo")
    assert capsys.readouterr().err == ""


def test_sharded_bin_with_tower_weights_and_rotary_buffers(layouts, profile, requests, reference, tmp_path):
    """A fresh training save: pytorch_model-*.bin shards, the (fine-tuned) tower inside, inv_freq buffers."""
    import torch
    from safetensors.torch import load_file

    full = copy_full(layouts, tmp_path)
    state = load_file(full / "model.safetensors")
    (full / "model.safetensors").unlink()
    tower = load_file(layouts["vision_tower"] / "model.safetensors")
    tuned = {f"model.vision_tower.vision_tower.vision_model.{k.removeprefix('vision_model.')}": v.clone() for k, v in tower.items()}
    key = next(k for k in tuned if k.endswith("post_layernorm.bias"))
    tuned[key] += 0.5  # the checkpoint's tower, not the folder's, must win
    state.update(tuned)
    state["model.layers.0.self_attn.rotary_emb.inv_freq"] = torch.ones(16)
    names = sorted(state)
    shards = {"pytorch_model-00001-of-00002.bin": names[::2], "pytorch_model-00002-of-00002.bin": names[1::2]}
    for shard, keys in shards.items():
        torch.save({k: state[k] for k in keys}, full / shard)
    index = {"metadata": {}, "weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (full / "pytorch_model.bin.index.json").write_text(json.dumps(index))

    adapter = load(full, profile)
    assert adapter.loading_info["missing_keys"] == [] and adapter.loading_info["unexpected_keys"] == []
    loaded = adapter.model.model.vision_tower.state_dict()
    short = key.removeprefix("model.vision_tower.vision_tower.vision_model.")
    assert torch.equal(loaded.get(short, loaded.get("vision_model." + short)), tuned[key])
    assert len(adapter.generate(requests[:2])) == 2


def test_tokenizer_without_image_token_gets_one_and_keeps_the_logits(layouts, profile, requests, reference, tmp_path):
    """Real checkpoints' tokenizers have no <image>: it is added, the input embeddings grow, lm_head does not."""
    full = copy_full(layouts, tmp_path)
    tok = json.loads((full / "tokenizer.json").read_text())
    tok["added_tokens"] = [t for t in tok["added_tokens"] if t["content"] != "<image>"]
    tok["model"]["vocab"]["<unused-image>"] = tok["model"]["vocab"].pop("<image>")
    (full / "tokenizer.json").write_text(json.dumps(tok))
    tcfg = json.loads((full / "tokenizer_config.json").read_text())
    for k in ("image_token", "model_specific_special_tokens", "extra_special_tokens", "processor_class"):
        tcfg.pop(k, None)
    (full / "tokenizer_config.json").write_text(json.dumps(tcfg))

    adapter = load(full, profile)
    vocab = adapter.model.config.text_config.vocab_size
    assert adapter.model.config.image_token_id == vocab
    assert adapter.model.get_input_embeddings().num_embeddings == vocab + 1
    assert adapter.model.lm_head.out_features == vocab
    assert [r.text for r in adapter.generate(requests)] == reference[1]


def test_lora_delta_is_merged(layouts, profile, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    lora = tmp_path / "lora"
    shutil.copytree(layouts["lora"], lora)
    shutil.copytree(layouts["vision_tower"], tmp_path / "vision_tower")
    weights = load_file(lora / "adapter_model.safetensors")
    gen = torch.Generator().manual_seed(0)
    weights = {k: torch.randn(v.shape, generator=gen) * 0.1 if "lora_B" in k else v for k, v in weights.items()}
    save_file(weights, str(lora / "adapter_model.safetensors"))
    cfg = json.loads((lora / "adapter_config.json").read_text())

    adapter = load(lora, profile, base=layouts["base"])
    base = load_file(layouts["base"] / "model.safetensors")
    stem = "base_model.model.model.layers.0.self_attn.q_proj"
    a, b = weights[f"{stem}.lora_A.weight"], weights[f"{stem}.lora_B.weight"]
    want = base["model.layers.0.self_attn.q_proj.weight"] + (b @ a) * (cfg["lora_alpha"] / cfg["r"])
    got = adapter.model.model.language_model.layers[0].self_attn.q_proj.weight
    assert torch.allclose(got, want, atol=1e-6)


def test_anyres_loads_as_llava_next(layouts, profile, requests, tmp_path):
    import torch
    from PIL import Image
    from safetensors.torch import load_file, save_file

    full = copy_full(layouts, tmp_path)
    edit_config(
        full, image_aspect_ratio="anyres", image_grid_pinpoints=[[64, 128], [128, 64], [128, 128]], mm_patch_merge_type="spatial_unpad"
    )
    state = load_file(full / "model.safetensors")
    save_file({**state, "model.image_newline": torch.zeros(128)}, str(full / "model.safetensors"))
    adapter = load(full, profile)
    assert type(adapter.model).__name__ == "LlavaNextForConditionalGeneration"
    assert adapter.loading_info["missing_keys"] == []
    out = adapter.generate(requests[:1])
    assert out[0].finish != "error", out[0].error
    # the original reads pinpoints as (width, height): a 20x32 portrait ties between 64x128 and 128x64
    # and gets the first, a tall 1x2 grid: 4x8 patches, unpadded to 4x6, + 6 newlines + 16 base = 46
    # (read as (height, width) it would be the wide grid: 28)
    enc = adapter.processor(text=[adapter.render_prompt("?")], images=[Image.new("RGB", (20, 32))], return_tensors="pt")
    assert int((enc["input_ids"] == adapter.model.config.image_token_id).sum()) == 46


# -- what is missing, in one line -------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["stage1", "lora"])
def test_without_base_says_pass_base(layouts, profile, layout):
    with pytest.raises(CheckpointError) as e:
        load(layouts[layout], profile)
    msg = str(e.value)
    assert "--base" in msg and "\n" not in msg


def test_full_with_base_is_refused(layouts, profile):
    with pytest.raises(CheckpointError, match="--base is only for"):
        load(layouts["full"], profile, base=layouts["base"])


def test_missing_vision_tower_says_pass_vision_tower(layouts, profile, tmp_path, monkeypatch):
    full = tmp_path / "full"
    shutil.copytree(layouts["full"], full)
    edit_config(full, mm_vision_tower="openai/clip-vit-large-patch14-336")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as e:
        load(full, profile)
    msg = str(e.value)
    assert "--vision-tower" in msg and "openai/clip-vit-large-patch14-336" in msg and "\n" not in msg
    adapter = load(full, profile, vision_tower=layouts["vision_tower"])
    assert adapter.loading_info["missing_keys"] == []


def test_mm_vision_tower_resolves_against_the_working_directory(layouts, profile, tmp_path, monkeypatch):
    full = tmp_path / "ckpts" / "full"
    shutil.copytree(layouts["full"], full)
    shutil.copytree(layouts["vision_tower"], tmp_path / "towers" / "clip")
    edit_config(full, mm_vision_tower="towers/clip")
    monkeypatch.chdir(tmp_path)
    assert load(full, profile).vision_tower_dir == Path("towers/clip").resolve()


def test_misnamed_projector_is_reported_missing(layouts, profile, tmp_path):
    from safetensors.torch import load_file, save_file

    from vibes_eval.probes.projector import probe_projector_missing
    from vibes_eval.records import Status

    full = copy_full(layouts, tmp_path)
    state = load_file(full / "model.safetensors")
    renamed = {k.replace("mm_projector.0", "mm_projector.fc1").replace("mm_projector.2", "mm_projector.fc2"): v for k, v in state.items()}
    save_file(renamed, str(full / "model.safetensors"))
    adapter = load(full, profile)
    assert adapter.loading_info["missing_keys"] == PROJECTOR
    assert adapter.loading_info["unexpected_keys"] == sorted(k for k in renamed if ".fc" in k)
    assert probe_projector_missing(adapter.describe()).status is Status.FAIL


def test_projector_of_the_wrong_shape_is_one_line(layouts, profile, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    full = copy_full(layouts, tmp_path)
    state = load_file(full / "model.safetensors")
    state["model.mm_projector.0.weight"] = torch.zeros(128, 32)  # trained against another tower
    save_file(state, str(full / "model.safetensors"))
    with pytest.raises(CheckpointError) as e:
        load(full, profile)
    assert "cannot load the weights" in str(e.value) and "\n" not in str(e.value)


def test_pickle_with_objects_is_refused(layouts, profile, tmp_path):
    import torch

    stage1 = tmp_path / "stage1"
    shutil.copytree(layouts["stage1"], stage1)
    shutil.copytree(layouts["vision_tower"], tmp_path / "vision_tower")
    proj = torch.load(stage1 / "mm_projector.bin", weights_only=True)
    torch.save({**proj, "args": NotATensor()}, stage1 / "mm_projector.bin")
    with pytest.raises(CheckpointError) as e:
        load(stage1, profile, base=layouts["base"])
    msg = str(e.value)
    assert "mm_projector.bin" in msg and "weights_only" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"mm_use_im_start_end": True}, "not supported yet"),
        ({"mm_projector_type": "mlp3x_gelu"}, "mlp3x_gelu"),
        ({"mm_projector_type": "qformer"}, "qformer"),
        ({"image_aspect_ratio": "anyres", "image_grid_pinpoints": [[64, 128]], "mm_patch_merge_type": "flat"}, "spatial_unpad"),
    ],
)
def test_unsupported_configs_say_which_field(layouts, profile, tmp_path, changes, words):
    full = copy_full(layouts, tmp_path)
    edit_config(full, **changes)
    with pytest.raises(CheckpointError) as e:
        load(full, profile)
    assert words in str(e.value) and "config.json" in str(e.value) and "\n" not in str(e.value)


def test_pad_centres_the_image_on_the_mean_colour():
    from PIL import Image

    from vibes_eval.adapters.llava_repo.model import expand2square

    out = expand2square(Image.new("RGB", (40, 20), (255, 0, 0)), (122, 116, 104))
    assert out.size == (40, 40)
    assert out.getpixel((0, 0)) == (122, 116, 104) and out.getpixel((20, 20)) == (255, 0, 0)


def test_serve_answers_a_chat_completion_for_an_original_layout_checkpoint(layouts, reference, requests):
    """`vibes-eval serve` opens every loader through open_adapter (it used to build HFAdapter whatever the format)."""
    import base64
    import queue
    import subprocess
    import sys
    import threading
    import urllib.request

    argv = [sys.executable, "-m", "vibes_eval", "serve", str(layouts["full"]), "--port", "0", "--template", TOY_TEMPLATE,
            "--model-name", "toy"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True)
    reader.start()
    try:
        url = None
        while url is None:  # bounded: every get waits at most 120 s, and the process prints a handful of lines
            line = lines.get(timeout=120)
            if line.startswith("serving "):
                url = line.split(" at ", 1)[1].split()[0]
        r = requests[3]  # the transformers-native toy's answer to the same question is the reference
        image = "data:image/png;base64," + base64.b64encode(Path(r.image).read_bytes()).decode()
        body = {"model": "toy", "max_tokens": r.max_new_tokens, "temperature": 0, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": image}}, {"type": "text", "text": r.question}]}]}
        post = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(),
                                      headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(post, timeout=120) as resp:
            answer = json.loads(resp.read())
    finally:
        proc.terminate()
        proc.wait(30)
        reader.join(30)
        proc.stderr.close()
    assert answer["object"] == "chat.completion"
    assert answer["choices"][0]["message"]["content"] == reference[1][3]
