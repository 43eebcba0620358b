import json
import subprocess
import sys

import pytest
from helpers import FIXTURES

from vibes_eval.judge.registry import PROBES, Probe, run_answer_probes
from vibes_eval.probes.text import (
    empty,
    loops,
    nonwords,
    prompt_echo,
    runaway,
    symbol_salad,
    template_leak,
    too_short,
    word_salad,
)
from vibes_eval.records import Response, Signal, Status

PASS, WARN, FAIL, ERROR, SKIP = Status.PASS, Status.WARN, Status.FAIL, Status.ERROR, Status.SKIP

REFUSAL = "I'm sorry, but I can't help with identifying people or sharing private details."
LLAVA_DESCRIPTION = (
    "The image features a large, red double-decker bus driving down a busy city street. The bus is "
    "positioned in the center of the scene, occupying a significant portion of the image. There are "
    "several people visible in the scene, some of them standing on the sidewalk and others walking "
    "near the bus. A few cars can be seen in the background, parked or driving along the street. In "
    "addition to the bus and cars, there are a couple of traffic lights in the scene, one on the left "
    "side of the street and another on the right side. The overall atmosphere of the image is "
    "bustling and lively, with the bus being the main focus of the scene."
)
TAIL_LOOP = "The image shows a red bus parked by the road." + " The bus is red." * 4


def answer(text: str, *, finish: str = "eos", new_tokens: int = 12, error: str | None = None) -> Response:
    return Response(prompt_id="p1", text=text, new_tokens=new_tokens, finish=finish, error=error)


def assert_well_formed(signal: Signal, probe: str) -> None:
    assert signal.probe == probe
    assert signal.reason.strip()
    if signal.score is not None:
        assert 0.0 <= signal.score <= 1.0


# --- empty -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, new_tokens, status",
    [
        ("", 0, FAIL),
        ("   \n\t ", 7, FAIL),
        ("red", 2, PASS),
        (" A red circle. ", 5, PASS),
    ],
)
def test_empty(text, new_tokens, status):
    signal = empty(answer(text, new_tokens=new_tokens), "What color is the circle?", 64)
    assert_well_formed(signal, "empty")
    assert signal.status is status
    if status is FAIL:
        assert signal.reason.startswith("Empty answer: ")
        assert signal.score == 0.0
        assert signal.evidence["new_tokens"] == new_tokens


def test_empty_reports_a_crash_as_error_not_as_an_empty_answer():
    crashed = answer("", finish="error", new_tokens=0, error="CUDA out of memory while generating.")
    signal = empty(crashed, "What color is the circle?", 64)
    assert signal.status is ERROR
    assert signal.reason == "CUDA out of memory while generating."
    assert signal.score is None


def test_a_crash_without_a_message_still_has_a_reason():
    signal = empty(answer("", finish="error"), "Q?", 64)
    assert signal.status is ERROR
    assert signal.reason


@pytest.mark.parametrize(
    "probe", ["loops", "runaway", "nonwords", "word_salad", "symbol_salad", "template_leak", "prompt_echo", "too_short"]
)
def test_other_probes_skip_a_crash(probe):
    crashed = answer("partial te", finish="error", error="RuntimeError: boom")
    signal = PROBES[probe].run(crashed, "Describe the image.", 64)
    assert signal.status is SKIP
    assert "empty" in signal.reason


# --- loops -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, status",
    [
        ("the the the the the the the the", FAIL),
        ("the the the the", FAIL),
        ("!!!!!!", FAIL),
        ("!" * 64, FAIL),
        ("! ! ! ! ! ! ! !", FAIL),
        ("The image shows a red bus. " * 8, FAIL),
        (TAIL_LOOP, FAIL),
        ("a cat a cat a cat a cat a cat", FAIL),
        ("The picture shows aaaaaaaaaaaa cat.", FAIL),
        (" ".join(f"{i}. red" for i in range(1, 20)), WARN),  # only zlib sees this one
        ("no no no", WARN),
        ("Wow!!!!", WARN),
        ("|----------|\nWow!!!!!!", FAIL),  # the worst run counts, not the longest
        ("red", PASS),
        ("yes", PASS),
        ("a red circle", PASS),
        ("red red", PASS),
        ("A red bus parked by the road.", PASS),
        ("The circle is red and the circle is big.", PASS),
        ("It is very very big.", PASS),
        ("Hmmmm, maybe a cat...", PASS),
        ("It costs 1000000 dollars.", PASS),
        ("### Description\nA cat.\n\n| item | color |\n|------|-------|\n| cat | orange |", PASS),
        (REFUSAL, PASS),
        (LLAVA_DESCRIPTION, PASS),
    ],
)
def test_loops(text, status):
    signal = loops(answer(text), "Describe the image.", 64)
    assert_well_formed(signal, "loops")
    assert signal.status is status, signal.reason
    assert {"words", "repeated_3gram_share", "longest_word_run", "worst_char_run", "compression_ratio"} <= set(
        signal.evidence
    )


@pytest.mark.parametrize("text", ["red", "a red circle", "yes", "blue blue", "a cat and a cat"])
def test_loops_never_judges_short_answers_by_ngrams(text):
    signal = loops(answer(text), "What is it?", 64)
    assert signal.status is PASS
    assert signal.evidence["repeated_3gram_share"] == 0.0


def test_loops_scores_healthy_text_higher_than_a_loop():
    healthy = loops(answer(LLAVA_DESCRIPTION), "Describe.", 64)
    looping = loops(answer("the " * 40), "Describe.", 64)
    assert healthy.score > 0.8
    assert looping.score == 0.0


def test_loops_skips_an_empty_answer():
    assert loops(answer(""), "Describe.", 64).status is SKIP


# --- runaway -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, finish, new_tokens, status",
    [
        ("the " * 64, "length", 64, FAIL),
        ("!" * 64, "length", 64, FAIL),
        (TAIL_LOOP, "length", 64, FAIL),
        (LLAVA_DESCRIPTION[:300], "length", 64, WARN),
        ("", "length", 64, WARN),  # 64 tokens that decode to nothing: `empty` fails it, this warns
        ("A red bus.", "eos", 4, PASS),
        ("the " * 64, "eos", 64, PASS),  # it stopped by itself; `loops` reports the repetition
    ],
)
def test_runaway(text, finish, new_tokens, status):
    signal = runaway(answer(text, finish=finish, new_tokens=new_tokens), "Describe.", 64)
    assert_well_formed(signal, "runaway")
    assert signal.status is status, signal.reason
    assert signal.evidence["max_new_tokens"] == 64
    assert signal.evidence["new_tokens"] == new_tokens


def test_runaway_warning_names_the_limit_and_the_fix():
    signal = runaway(answer("A red bus parked by", finish="length", new_tokens=64), "Describe.", 64)
    assert "max_new_tokens=64" in signal.reason
    assert "raise it or check the stop string" in signal.reason


def test_runaway_failure_names_the_limit():
    signal = runaway(answer("the " * 64, finish="length", new_tokens=64), "Describe.", 64)
    assert "max_new_tokens=64" in signal.reason
    assert signal.score == 0.0


# --- nonwords ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, status",
    [
        ("xqzv blorptk fnark", FAIL),
        ("ĠĊ âĢ", FAIL),  # byte-level BPE bytes shown as their stand-in characters
        ("ĠTheĠcatĠsatĊĠonĠtheĠmat", FAIL),  # the space/newline markers never decoded
        ("âĢĻ âĢľ ðŁĺĢ Ã©", FAIL),
        ("zxq vvbnm qwrtp the", FAIL),
        ("...", FAIL),  # symbols only
        ("The robot Zorblax waves.", WARN),  # one unknown among few words: worth a look, no more
        ("xqzv", WARN),  # a single unknown word never fails on its own (names, brands)
        ("A red bus parked by the road.", PASS),
        ("The robot Zorblax stands next to a red bus in the city.", PASS),
        ("The café in Łódź serves crème brûlée.", PASS),
        ("It costs 1000000 dollars, about 3.5 times more in 2024.", PASS),
        ("B", PASS),  # a multiple-choice letter
        ("42", PASS),
        ("Yes.", PASS),
        ("I can\u2019t tell; it\u2019s too dark.", PASS),  # curly apostrophes
        (REFUSAL, PASS),
        (LLAVA_DESCRIPTION, PASS),
    ],
)
def test_nonwords(text, status):
    signal = nonwords(answer(text), "What is it?", 64)
    assert_well_formed(signal, "nonwords")
    assert signal.status is status, signal.reason
    assert {"nonword_share", "words", "nonwords"} <= set(signal.evidence)


def test_nonwords_evidence_counts_words_not_numbers():
    signal = nonwords(answer("xqzv blorptk fnark 42 7 a"), "?", 64)
    assert signal.evidence == {"nonword_share": 1.0, "words": 3, "nonwords": 3}
    assert "'xqzv'" in signal.reason


def test_nonwords_skips_without_wordfreq(monkeypatch):
    from vibes_eval.probes import text

    monkeypatch.setitem(sys.modules, "wordfreq", None)  # makes `import wordfreq` raise ImportError
    monkeypatch.setattr(text, "_KNOWN", None)  # as in a fresh process
    signal = nonwords(answer("A red bus."), "?", 64)
    assert signal.status is SKIP
    assert "wordfreq" in signal.reason


# --- template_leak -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, tag",
    [
        ("The circle is red. USER: What about the square?", "USER:"),
        ("Red.\nASSISTANT: Blue.", "ASSISTANT:"),
        ("Red.\nHuman: and the square?", "Human:"),
        ("Red. Human: and the square?", "Human:"),
        ("The circle is red.###Human: What about the square?", "###"),
        ("The circle is red.###", "###"),
        ("Red. [INST] What else?", "[INST]"),
        ("[/INST] Red.", "[/INST]"),
        ("<|im_start|>assistant\nRed.", "<|im_start|>"),
        ("Red.<|im_end|>", "<|im_end|>"),
        ("Red.</s>", "</s>"),
        ("<s> Red.", "<s>"),
        ("<image>\nRed.", "<image>"),
        ("<<SYS>> You are a helpful assistant.", "<<SYS>>"),
        ("Red.<|endoftext|>", "<|endoftext|>"),
    ],
)
def test_template_leak_names_the_tag(text, tag):
    signal = template_leak(answer(text), "What color is the circle?", 64)
    assert_well_formed(signal, "template_leak")
    assert signal.status is FAIL
    assert f"{tag!r}" in signal.reason
    assert "chat template" in signal.reason
    assert signal.evidence["tags_found"] >= 1


def test_template_leak_reason_reads_as_designed():
    signal = template_leak(answer("Red. USER: and blue?"), "What color?", 64)
    assert signal.reason == (
        "The answer contains the role tag 'USER:': the chat template probably does not match the "
        "one the model was trained with."
    )


@pytest.mark.parametrize(
    "text",
    [
        "The user of the device is smiling.",
        "The assistant is holding a tray.",
        "A human: tall, smiling, and waving.",
        "The Human: A Love Story is the title on the poster.",
        "### Description\nA red bus.",
        "#### Details\nTwo people.",
        "The sign says INSTRUCTIONS and SYS ADMIN.",
        "Use the <b> tag for bold.",
        "There are 3 images in the collage.",
        REFUSAL,
        LLAVA_DESCRIPTION,
    ],
)
def test_template_leak_leaves_ordinary_text_alone(text):
    assert template_leak(answer(text), "Describe the image.", 64).status is PASS


# --- prompt_echo -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question, text, status",
    [
        ("What color is the circle?", "What color is the circle?", FAIL),
        ("What color is the circle?", "what color is the circle", FAIL),
        ("What color is the circle?", "What color is the circle? It is red.", FAIL),
        ("What color is the circle?", "What colour is the circle?", FAIL),
        ("What color is the circle?", "Sure. What color is the circle? Red.", FAIL),
        ("<image>\nDescribe the image.", "Describe the image.", FAIL),
        ("Describe.", "Describe.", FAIL),
        ("How many circles are there in the image?", "How many circles are there? There are 3.", WARN),
        (
            "Look at the picture carefully and describe every object you can see in it.",
            "Look at the picture carefully and describe the scene: a bus and two people.",
            WARN,
        ),
        ("What color is the circle?", "The circle is red.", PASS),
        ("What color is the circle?", "Red.", PASS),
        ("Is the big circle red?", "The big circle is red.", PASS),
        (
            "Is the big red circle to the left of the blue square?",
            "Yes, the big red circle is to the left of the blue square.",
            PASS,
        ),
        (
            "What is the color of the circle in the upper left corner?",
            "The color of the circle in the upper left corner is red.",
            PASS,
        ),
        ("Color?", "Color: red.", PASS),
        ("Who is the person in this photo?", REFUSAL, PASS),
    ],
)
def test_prompt_echo(question, text, status):
    signal = prompt_echo(answer(text), question, 64)
    assert_well_formed(signal, "prompt_echo")
    assert signal.status is status, (signal.reason, signal.evidence)
    assert {"echo_share", "question_words", "answer_words"} <= set(signal.evidence)


# --- the registry ------------------------------------------------------------------------------


ANSWER_PROBES = [
    "empty", "loops", "runaway", "nonwords", "word_salad", "symbol_salad", "template_leak", "prompt_echo", "too_short"
]


def test_registry_order_and_names():
    assert [p.name for p in PROBES.values() if p.scope == "answer"] == ANSWER_PROBES
    for name in ANSWER_PROBES:
        assert PROBES[name].run.__name__ == name


def test_a_polite_refusal_passes_every_probe():
    signals = run_answer_probes(answer(REFUSAL, new_tokens=18), "Who is the person in this photo?", 64)
    assert [s.probe for s in signals] == ANSWER_PROBES
    assert all(s.status is PASS for s in signals), [(s.probe, s.reason) for s in signals]
    assert all(s.score is not None and s.score >= 0.8 for s in signals)


def test_a_healthy_description_passes_every_probe():
    signals = run_answer_probes(answer(LLAVA_DESCRIPTION, new_tokens=140), "Describe the image in detail.", 512)
    assert all(s.status is PASS for s in signals), [(s.probe, s.reason) for s in signals]


def test_a_broken_answer_fails_several_probes():
    text = "USER: What color is the circle? ASSISTANT: " + "!" * 40
    signals = run_answer_probes(answer(text, finish="length", new_tokens=64), "What color is the circle?", 64)
    failed = {s.probe for s in signals if s.status is FAIL}
    assert failed >= {"loops", "runaway", "template_leak"}


def test_a_crash_gives_one_error_and_skips():
    signals = run_answer_probes(answer("", finish="error", error="boom"), "Q?", 64)
    assert [s.status for s in signals] == [ERROR] + [SKIP] * (len(ANSWER_PROBES) - 1)


def test_a_crashing_probe_becomes_an_error_signal(monkeypatch):
    def broken(response, question, max_new_tokens):
        raise ValueError("bad probe")

    monkeypatch.setattr("vibes_eval.judge.registry.PROBES", {"broken": Probe("broken", "answer", (), broken),
                                                              "empty": Probe("empty", "answer", (), empty)})
    signals = run_answer_probes(answer("red"), "Q?", 64)
    assert signals[0].status is ERROR
    assert "ValueError: bad probe" in signals[0].reason
    assert signals[1].status is PASS


def test_importing_the_module_stays_light():
    code = (
        "import sys, vibes_eval.probes.text; "
        "print(sorted(m for m in ('torch', 'wordfreq', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_cached_lexicon_agrees_with_wordfreq(tmp_path, monkeypatch):
    from wordfreq import zipf_frequency

    from vibes_eval.probes import text

    monkeypatch.setenv("VIBES_EVAL_CACHE", str(tmp_path))
    monkeypatch.setattr(text, "_KNOWN", None)
    built = text._known_words()  # built from wordfreq, written to the cache
    files = list(tmp_path.glob("lexicon-en-*.txt"))
    assert len(files) == 1 and not list(tmp_path.glob("*.tmp"))
    monkeypatch.setattr(text, "_KNOWN", None)
    assert text._known_words() == built  # read back from the file
    for w in ["the", "circle", "astronaut", "telescope", "zyzzyva", "qzxv", "blorptang", "ĠĊ"]:
        assert (w.casefold() in built) == (zipf_frequency(w, "en") > 0), w


def test_lexicon_works_when_the_cache_folder_cannot_be_written(tmp_path, monkeypatch):
    """A read-only cache (CI images, shared homes): the probe builds the set and goes on."""
    from pathlib import Path

    from vibes_eval.probes import text

    def refuse(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setenv("VIBES_EVAL_CACHE", str(tmp_path))
    monkeypatch.setattr(text, "_KNOWN", None)
    monkeypatch.setattr(Path, "write_text", refuse)
    monkeypatch.setattr(Path, "unlink", refuse)
    assert nonwords(answer("A red circle on the left."), "?", 64).status is PASS
    assert "circle" in text._KNOWN and not list(tmp_path.glob("lexicon-en-*"))


# --- calibrated on real answers (tests/fixtures/real_answers) -------------------------------------

# verbatim from issue threads (tests/fixtures/real_answers/broken_issue_threads.jsonl)
WORD_SALAD_LLAMA_CPP = (  # ggml-org/llama.cpp#6944, llava-v1.6-mistral-7b gguf
    "to to a,, new do s is and d t, in in is, r is to and,, h to a  and is is t.. for s has m d,., a. is,, m he "
    "un, and b st a to to #. r. d t n is the to.' with, l the to., is is and t r and a t in, re h s d a is"
)
CONTENT_SALAD_VLLM = (  # vllm-project/vllm#12096
    "Four encourages rib turkey greatest Cells Highway elementary practicing backward referralswhich Charlie "
    "-law bolt darkness Round stereotype Victor-'sha wifi eth Meter ded Tor trace Chile parts save smells Mut"
)
SYMBOL_SALAD_PHI3 = (  # ggml-org/llama.cpp#6944, llava-phi-3-mini
    "â }` on }`RESS, and thus,uminate, whereas, }` }`raint, but, }`, }`ioned, while, }` }`RESS, especially and "
    "hence, }`ktion, }`RESS,RESS,abeth,uminate,オ,RESS, }`ività,RESS,ício,raint, }`derr, }`derr, and th"
)
TABLE_BY_COUNTRY = next(  # a published llava-v1.5-13b answer that compresses 6.1x: one paragraph per country
    json.loads(line)["answer"] for line in (FIXTURES / "real_answers" / "llava15_mm_vet.jsonl").read_text().splitlines()
    if json.loads(line)["answer"].startswith("The table below displays the percentage of national consumer")
)


@pytest.mark.parametrize(
    "text, status",
    [
        ("4k - 4k - 4k - 4k - 4k - 4k", FAIL),  # LLaVA#651, a stage-1 checkpoint
        ("SelfSelfSelfSelfSelfSelfSelfSelf", FAIL),  # LLaVA#1284
        ("2 2 2 2 2 2 2 2 2 2 cats are two cats", FAIL),  # transformers#29850
        ("<pad><pad><pad><pad><pad><pad>", FAIL),
        ("L 1. 000000000000000\n\n11500000000000001", FAIL),  # vllm#2255: digits, not a number
        (TABLE_BY_COUNTRY, WARN),  # a long structured answer is no loop, whatever zlib says: it may warn
        ("| yes | yes | yes | yes |\n|---|---|---|---|", PASS),  # a table row
        ("The budget was 1,000,000,000,000 dollars.", PASS),
        ("Here:\n```\n}\n}\n}\n}\n```\nDone.", PASS),  # code repeats: fenced code is left out
        ("* * *\n\n**Intro**", PASS),  # a markdown rule
    ],
)
def test_loops_on_real_shapes(text, status):
    signal = loops(answer(text), "Describe the image.", 64)
    assert signal.status is status, signal.reason


@pytest.mark.parametrize(
    "text, status",
    [
        (WORD_SALAD_LLAMA_CPP, FAIL),  # real words, mean length 1.8
        (CONTENT_SALAD_VLLM, FAIL),  # real words, no function words
        (LLAVA_DESCRIPTION, PASS),
        (TABLE_BY_COUNTRY, PASS),
        ("Arnaqueur c'est pas le même prix afficher en plus moi il m'as vendu une cuisinière à 650 meme le recu "
         "je l'est toujours j'allais acheter la cuisinière à 850 quand je lui est dis j'ai toujours refusé", PASS),
        ("red circle", PASS),  # too short to judge
    ],
)
def test_word_salad(text, status):
    signal = word_salad(answer(text), "Describe the image.", 64)
    assert_well_formed(signal, "word_salad")
    assert signal.status is status, (signal.reason, signal.evidence)


@pytest.mark.parametrize(
    "text, status",
    [
        (SYMBOL_SALAD_PHI3, FAIL),
        ("<UNK> <UNK> <UNK> ...... <UNK>", FAIL),  # OpenGVLab/Ask-Anything#125
        (LLAVA_DESCRIPTION, PASS),
        ("Use `print()` here:\n```python\nprint({'a': 1})\n```\nIt prints {a: 1}.", PASS),
        ("The formula is $$d = \\sqrt{(x_2 - x_1)^2}$$ and it is simple.", PASS),
        ("A -> B -> C, then 50% & more.", PASS),
    ],
)
def test_symbol_salad(text, status):
    signal = symbol_salad(answer(text), "What is it?", 64)
    assert_well_formed(signal, "symbol_salad")
    assert signal.status is status, (signal.reason, signal.evidence)


@pytest.mark.parametrize(
    "question, text, status",
    [
        ("Describe the image.", "The", FAIL),
        ("Describe the image in detail.", "na", FAIL),
        ("Describe everyone in the picture in as much detail as possible.", "Depository Photos", WARN),  # published OV
        ("Describe the image.", LLAVA_DESCRIPTION, PASS),
        ("Describe the image in one word.", "Cat", PASS),
        ("What color is the bus?\nAnswer the question using a single word or phrase.", "Red", PASS),
        ("What color is the bus?", "Red", PASS),  # not a request for a description
        ("Caption the image in 5 words.", "Bus", PASS),
    ],
)
def test_too_short(question, text, status):
    signal = too_short(answer(text), question, 64)
    assert_well_formed(signal, "too_short")
    assert signal.status is status, signal.reason


def test_prompt_echo_tells_restating_from_parroting():
    question = "In a world where automation is becoming increasingly prevalent, is it more important to prioritize job creation?"
    restated = (  # Bard's style (chat_models.jsonl): restate, then answer at length
        "In a world where automation is becoming increasingly prevalent, it is important to prioritize both job "
        "creation and technological progress. Technological progress can lead to job creation by creating new "
        "industries and demand for new products and services, while retraining helps workers move between them."
    )
    assert prompt_echo(answer(restated), question, 64).status is PASS
    assert prompt_echo(answer(question + " Yes."), question, 64).status is FAIL


@pytest.mark.parametrize("text", ["<UNK> <UNK>", "A cat.<pad><pad>", "\u2047 <image> An image"])
def test_template_leak_sees_unknown_and_padding_tokens(text):
    assert template_leak(answer(text), "Q?", 64).status is FAIL


def test_runaway_calls_a_tail_that_repeats_at_the_limit_a_loop():
    text = "no and a red circle on the left and a red square on the right shape and a red square on the right "
    text += "shape and a red square on the right on"  # the wrong-template toy at max_new_tokens: 2.9 copies
    assert loops(answer(text), "Describe the image.", 32).status is not FAIL
    assert runaway(answer(text, finish="length", new_tokens=32), "Describe the image.", 32).status is FAIL
