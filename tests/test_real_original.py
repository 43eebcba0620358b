"""Original LLaVA repo folders as released (liuhaotian/llava-v1.5-7b, llava-v1.6-vicuna-7b): the
real config.json and tokenizer.model only (no tokenizer.json), shrunken random weights. They load
(sentencepiece + protobuf), tokenize exactly as the training code did, and every probe runs."""

from __future__ import annotations

import json
import math

import pytest
import realckpt

from vibes_eval.adapters.detect import detect
from vibes_eval.adapters.templates import TEMPLATES, render_template
from vibes_eval.cli.main import main
from vibes_eval.records import Request

ORIGINAL_TEMPLATES = ["vicuna_v1", "llava_v1", "llava_v0", "mistral_instruct", "llava_llama_2", "chatml_direct", "qwen_1_5", "plain"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("original")
    tower = realckpt.build_tower(root / "clip-vit-large-patch14-336")
    return {v: realckpt.build_original(v, root / v) for v in ("1.5", "1.6")}, tower, realckpt.write_suite(root / "suite")


@pytest.fixture(scope="module")
def adapters(folders):
    from vibes_eval.adapters.llava_repo.model import LlavaRepoAdapter

    ckpts, tower, _ = folders
    return {v: LlavaRepoAdapter(c, detect(c), vision_tower=tower, template="vicuna_v1") for v, c in ckpts.items()}


def tokenizer_image_token(sp, prompt: str, image_id: int) -> list[int]:
    """The original repo's function, over the real sentencepiece model (what its slow LlamaTokenizer does)."""
    chunks = [[1] + sp.encode(c) for c in prompt.split("<image>")]
    out = [chunks[0][0]]
    for k, chunk in enumerate(chunks):
        if k:
            out.append(image_id)
        out.extend(chunk[1:])
    return out


@pytest.mark.parametrize("template", ORIGINAL_TEMPLATES)
def test_prompt_ids_are_the_original_repos(adapters, folders, template):
    import sentencepiece

    assert template in TEMPLATES
    sp = sentencepiece.SentencePieceProcessor(model_file=str(realckpt.LLAVA15 / "tokenizer.model"))
    adapter = adapters["1.5"]
    image_id = adapter.model.config.image_token_id
    prompt = render_template(template, "What is shown in this image?")
    want = tokenizer_image_token(sp, prompt, image_id)
    assert adapter.processor.tokenizer(prompt)["input_ids"] == want
    if template == "vicuna_v1":  # the case: `▁` (29871) before the image and again after it
        k = want.index(image_id)
        assert want[k - 1 : k + 3] == [29871, image_id, 29871, 13]
    # what the model is fed: the processor expands the image to 576 positions, the rest unchanged
    image = folders[2].parent / "images" / "0.png"
    from vibes_eval.adapters.hf.model import load_image

    fed = adapter.encode([prompt], [load_image(image)])["input_ids"][0].tolist()
    k = want.index(image_id)
    assert fed == want[:k] + [image_id] * 576 + want[k + 1 :]
    row = adapter._prefix.split(Request(prompt_id="p", image=image, question="What is shown in this image?", template=template))
    assert list(row.prefix) + row.tail == adapter._prefix._ids(adapter.render_prompt("What is shown in this image?", template))


def test_tokenizer_model_only_folder_loads(folders, adapters):
    ckpt = folders[0]["1.5"]
    assert (ckpt / "tokenizer.model").is_file() and not (ckpt / "tokenizer.json").exists()
    assert type(adapters["1.5"].processor.tokenizer).__name__.startswith("Llama")


def test_anyres_scores_a_short_target_beside_a_long_one(adapters, folders):
    """Original v1.6: <image> lies past the output head; a short target in a left-padded batch
    reaches back over prompt image tokens. Every likelihood must come back."""
    images = folders[2].parent / "images"
    reqs = [Request(prompt_id=str(i), image=images / f"{i}.png", question="What color?") for i in range(2)]
    values = adapters["1.6"].score(reqs, ["red", "The shape in the middle of the picture is red, on a white background."])
    assert all(v is not None and math.isfinite(v) for v in values)


@pytest.mark.parametrize("version, family", [("1.5", "llava"), ("1.6", "llava-next")])
def test_run_flags_random_weights_with_every_probe(folders, tmp_path, version, family):
    ckpts, tower, suite = folders
    out = tmp_path / "out"
    code = main(["run", str(ckpts[version]), "--vision-tower", str(tower), "--template", "vicuna_v1",
                 "--suite", str(suite), "--out", str(out), "--quiet"])
    sc = json.loads((out / "scorecard.json").read_text())
    assert code == 1 and set(sc["verdict"]["diagnoses"]) & {"gibberish", "image_blind", "projector_disconnected"}
    assert [s["probe"] for s in sc["signals"] if s["status"] == "error"] == []
    assert {"image_gain", "cross_match", "likelihood", "template_fit"} <= {s["probe"] for s in sc["signals"]}
    assert sc["fingerprint"]["visual_token_budget"].startswith(family)


@pytest.mark.parametrize("bos, text, want", [
    (1, "ab<image>c", [1, 97, 98, -200, 99]),  # every chunk's own bos dropped but the first
    (1, "<image>\nc<image>", [1, -200, 10, 99, -200]),
    (None, "ab<image>c", [97, 98, -200, 99]),  # Qwen: no bos at all
])
def test_image_split_ids(bos, text, want):
    from vibes_eval.adapters.llava_repo.tokens import image_split_ids

    def encode(chunk: str) -> list[int]:
        return ([bos] if bos is not None else []) + [ord(c) for c in chunk]

    assert image_split_ids(encode, text, "<image>", -200, bos) == want
