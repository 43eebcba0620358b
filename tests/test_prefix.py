"""The shared-prefix path (adapters/hf/prefix.py) gives what the plain processor path gives, doing less work."""

from __future__ import annotations

import pytest
from helpers import SHAPES

from vibes_eval.adapters.templates import TEMPLATES, answer_cue, splice_template
from vibes_eval.records import Request
from vibes_eval.suite.schema import load_suite

SUITE = SHAPES


@pytest.fixture(scope="module")
def adapters(zoo_dir):
    from vibes_eval.adapters.detect import detect
    from vibes_eval.adapters.hf.model import HFAdapter

    ckpt = zoo_dir / "healthy"
    return HFAdapter(ckpt, detect(ckpt)), HFAdapter(ckpt, detect(ckpt), prefix_cache=False)


def _requests():
    suite = load_suite(SUITE)
    ps = suite.prompts
    out = []
    for i, p in enumerate(ps):
        n = suite.max_new_tokens(p)
        other = ps[(i + 1) % len(ps)]
        out += [Request(prompt_id=p.id, image=p.path, question=p.question, max_new_tokens=n),
                Request(prompt_id=p.id, variant="blank", image=p.path, question=p.question, max_new_tokens=n),
                Request(prompt_id=p.id, variant="swap", image=other.path, question=p.question, max_new_tokens=n)]
    return suite, out


def test_prefix_path_is_used_for_plain_llava(adapters):
    fast, plain = adapters
    assert fast._prefix is not None and plain._prefix is None


def test_same_answers_with_and_without_shared_prefixes(adapters):
    fast, plain = adapters
    _, reqs = _requests()
    a, b = fast.generate(reqs), plain.generate(reqs)
    assert [r.finish for r in a] == [r.finish for r in b]
    assert [r.text for r in a] == [r.text for r in b]
    assert any(r.text for r in a)


def test_same_likelihoods_with_and_without_shared_prefixes(adapters):
    fast, plain = adapters
    suite, reqs = _requests()
    refs = {p.id: p.reference or "a red circle" for p in suite.prompts}
    reqs += [Request(prompt_id=r.prompt_id, image=r.image, question=r.question, max_new_tokens=8, template="llava-next-mistral-hf")
             for r in reqs[::3]]
    targets = [refs[r.prompt_id] for r in reqs]
    a, b = fast.score(reqs, targets), plain.score(reqs, targets)
    assert all(x is not None for x in a) and all(y is not None for y in b)
    assert max(abs(x - y) for x, y in zip(a, b)) < 1e-4


def test_each_image_is_encoded_and_prefilled_once(zoo_dir):
    from vibes_eval.adapters.detect import detect
    from vibes_eval.adapters.hf.model import HFAdapter

    ckpt = zoo_dir / "healthy"
    ad = HFAdapter(ckpt, detect(ckpt))
    suite, reqs = _requests()
    ad.generate(reqs)
    ad.score(reqs, [p.reference or "x" for p in suite.prompts for _ in range(3)])
    distinct = len({p.path for p in suite.prompts}) + 1  # every blank image looks the same to the model
    assert ad._prefix.stats["encodes"] == distinct
    assert ad._prefix.stats["prefills"] == distinct
    assert ad._prefix.stats["prefill_hits"] > 0


def test_kv_budget_evicts_and_recomputes_the_same_numbers(zoo_dir):
    from vibes_eval.adapters.detect import detect
    from vibes_eval.adapters.hf.model import HFAdapter

    ckpt = zoo_dir / "healthy"
    ad = HFAdapter(ckpt, detect(ckpt))
    ad._prefix.kv_budget = 1  # keeps one prefix at a time
    suite, reqs = _requests()
    targets = [p.reference or "x" for p in suite.prompts for _ in range(3)]
    small = ad.score(reqs, targets)
    assert len(ad._prefix._kv) == 1
    ad2 = HFAdapter(ckpt, detect(ckpt))
    assert max(abs(x - y) for x, y in zip(small, ad2.score(reqs, targets))) < 1e-5


def test_splice_keeps_the_prompt_up_to_the_image_and_takes_the_cue():
    own = "USER: <image>\nWhat colour? ASSISTANT:"
    assert splice_template(own, "<image>", "llava-next-mistral-hf", "What colour?") == "USER: <image>\nWhat colour? [/INST]"
    assert splice_template(own, "<image>", "vicuna_v1", "What colour?") == own  # differs only before the image
    assert all("{q}" in answer_cue(n) for n in TEMPLATES)
