"""Text probes: read one answer and say whether it looks like a healthy model's text.

Every probe here is a pure function `(response, question, max_new_tokens) -> Signal`,
registered as an answer probe in `judge/registry.py`. They catch the symptoms that
need no image at all: empty answers, decoding loops, answers that run to
max_new_tokens, gibberish, word and symbol salad, chat-template role tags in the answer, the
question echoed back, and a one-word answer to a request for a description. Their numbers live in
judge/thresholds.py, calibrated on real answers (tests/fixtures/real_answers, bench/real_answers.py).

A crashed generation (`finish == "error"`) is reported once, as an ERROR from `empty`; the
other probes return SKIP for it, since there is no answer to read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from difflib import SequenceMatcher
from functools import wraps

from vibes_eval.judge import thresholds as th
from vibes_eval.probes import salad
from vibes_eval.probes.repetition import loopiness as _loopiness
from vibes_eval.records import ProbeName, Response, Signal, Status

__all__ = [
    "TextProbe",
    "empty",
    "loops",
    "nonwords",
    "prompt_echo",
    "runaway",
    "symbol_salad",
    "template_leak",
    "too_short",
    "word_salad",
]

TextProbe = Callable[[Response, str, int], Signal]
"""The shape every text probe has: (response, question, max_new_tokens) -> Signal."""


def _signal(probe: str, status: Status, score: float | None, reason: str, **evidence: float | int) -> Signal:
    return Signal(probe=probe, status=status, score=score, reason=reason, evidence=evidence)


def _reads_answer(probe: TextProbe) -> TextProbe:
    """SKIP when there is no answer to read: a crash (`empty` reports it) or an empty text."""

    @wraps(probe)
    def guarded(response: Response, question: str, max_new_tokens: int) -> Signal:
        if response.finish == "error":
            why = "generation failed (the 'empty' probe reports the error)"
        elif not response.text.strip():
            why = "the answer is empty (the 'empty' probe reports it)"
        else:
            return probe(response, question, max_new_tokens)
        return _signal(probe.__name__, Status.SKIP, None, f"Nothing to read: {why}.")

    return guarded


# --- empty -------------------------------------------------------------------------------------


def empty(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL on an empty or whitespace-only answer; ERROR when generation crashed.

    Args:
        response: The model's answer.
        question: Unused; every text probe has the same signature.
        max_new_tokens: Unused.

    Returns:
        The `empty` Signal.
    """
    if response.finish == "error":
        # a crash is never an empty answer: it is "could not evaluate", with the crash's own words
        reason = response.error or "Generation failed without an error message."
        return _signal(ProbeName.EMPTY, Status.ERROR, None, reason, new_tokens=response.new_tokens)
    evidence = {"chars": len(response.text), "new_tokens": response.new_tokens}
    if response.text.strip():
        reason = f"The answer has {len(response.text.strip())} characters."
        return _signal(ProbeName.EMPTY, Status.PASS, 1.0, reason, **evidence)
    if response.new_tokens == 0:
        why = "the model ended at its first token; check the stop string and that the prompt ends where the "
        why += "template expects the answer to start."
    else:
        why = f"{response.new_tokens} new tokens decoded to nothing visible; check that the stop string and "
        why += "special-token skipping match the template."
    return _signal(ProbeName.EMPTY, Status.FAIL, 0.0, f"Empty answer: {why}", **evidence)


# --- loops -------------------------------------------------------------------------------------

@_reads_answer
def loops(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL on obvious repetition loops, WARN on borderline ones.

    Reads the share of repeated 3-grams (answers of 8+ words), the longest run of one word or one
    character, and the zlib compression ratio (answers of 100+ characters).

    Args:
        response: The model's answer.
        question: Unused; every text probe has the same signature.
        max_new_tokens: Unused.

    Returns:
        The `loops` Signal.
    """
    return _loopiness(response.text)


# --- runaway -----------------------------------------------------------------------------------


def runaway(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL when generation looped until max_new_tokens; WARN when it only hit the limit.

    Args:
        response: The model's answer.
        question: Unused; every text probe has the same signature.
        max_new_tokens: The limit the request was generated with.

    Returns:
        The `runaway` Signal.
    """
    if response.finish == "error":
        return _signal(ProbeName.RUNAWAY, Status.SKIP, None, "Nothing to read: generation failed (see the 'empty' probe).")
    evidence: dict[str, float | int] = {"new_tokens": response.new_tokens, "max_new_tokens": max_new_tokens}
    # `finish` is the adapter's word for why it stopped; new_tokens is evidence only (a stop string
    # can end generation on exactly the last allowed token)
    if response.finish != "length":
        reason = f"Generation ended by itself after {response.new_tokens} of {max_new_tokens} new tokens."
        return _signal(ProbeName.RUNAWAY, Status.PASS, 1.0, reason, **evidence)
    found = _loopiness(response.text)
    evidence.update(
        repeated_3gram_share=found.evidence["repeated_3gram_share"],
        compression_ratio=found.evidence["compression_ratio"],
        copies=found.evidence["copies"],
    )
    # cut by the limit, a tail repeating 2.5 times is a loop the limit stopped, not a long answer
    looped = found.evidence["copies"] >= th.RUNAWAY_COPIES or found.evidence["sentence_copies"] >= 2
    if found.status is Status.FAIL or looped or found.evidence["repeated_3gram_share"] >= th.REPEATED_3GRAM_WARN:
        reason = f"The answer loops until max_new_tokens={max_new_tokens}: the stop string or template "
        reason += "probably does not match the model, or fp16 overflowed."
        return _signal(ProbeName.RUNAWAY, Status.FAIL, 0.0, reason, **evidence)
    reason = f"The answer hit max_new_tokens={max_new_tokens} without an end-of-sequence token; "
    reason += "raise it or check the stop string."
    return _signal(ProbeName.RUNAWAY, Status.WARN, 0.5, reason, **evidence)


# --- nonwords ----------------------------------------------------------------------------------

_WORDISH = re.compile(r"\w+(?:['\u2019]\w+)*")  # "can't" with a straight or a curly apostrophe is one word
_BPE_MARKER = re.compile("([\u0120\u010a\u0109])")


def _lexicon_words(text: str) -> list[str]:
    """The tokens worth looking up: no numbers, no single ASCII letters ("a", "B", "x")."""
    # GPT-2 byte-level BPE spells space/newline/tab as Ġ/Ċ/ĉ; when they leak ("ĠTheĠcat") each
    # marker is a non-word of its own, instead of one long unknown token that hides the rest
    text = _BPE_MARKER.sub(r" \1 ", text)
    words = []
    for token in _WORDISH.findall(text):
        if any(c.isdigit() for c in token):
            continue  # "42", "3rd", "fp16": not words, but not gibberish either
        # a lone non-ASCII letter stays in: byte-level BPE debris ("Ġ", "Ċ") is exactly that
        words += [part for part in token.split("_") if len(part) > 1 or (part and not part.isascii())]
    return words


_KNOWN: frozenset[str] | None = None


def _known_words() -> frozenset[str] | None:
    """wordfreq's English lexicon as a set of words (casefolded); None without wordfreq.

    `import wordfreq` plus building its frequency table takes ~0.2 s, a third of a toy run; the
    word list is written once to the cache folder (`$VIBES_EVAL_CACHE`, else ~/.cache/vibes-eval),
    keyed by the size and date of wordfreq's data file, and read back in ~0.07 s. Every word in it
    has `zipf_frequency > 0`; `nonwords` asks wordfreq itself about the words not in it.
    """
    global _KNOWN
    if _KNOWN is not None:
        return _KNOWN
    import importlib.util
    from pathlib import Path

    try:
        spec = importlib.util.find_spec("wordfreq")
    except (ImportError, ValueError):  # ValueError: sys.modules["wordfreq"] is None (import blocked)
        spec = None
    if spec is None or not spec.origin:
        return None
    data = Path(spec.origin).parent / "data" / "large_en.msgpack.gz"
    from vibes_eval.resources import cache_root

    st = data.stat() if data.is_file() else None
    cached = cache_root() / f"lexicon-en-{st.st_size}-{int(st.st_mtime)}.txt" if st else None
    if cached is not None and cached.is_file():
        words = cached.read_text(encoding="utf-8").split("\n")
    else:
        from wordfreq import get_frequency_dict

        words = list(get_frequency_dict("en"))
        if cached is not None:
            _write_lexicon(cached, words)
    _KNOWN = frozenset(words)
    return _KNOWN


def _write_lexicon(path, words: list[str]) -> bool:
    """Write the word list to `path` atomically and drop older lists; False where the folder is read-only."""
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text("\n".join(words), encoding="utf-8")
        tmp.replace(path)  # atomic: a reader sees all of it or none
    except OSError:  # read-only or full: this run uses the set it built; the next builds it again
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only folder: there is no partial file to remove
            return False
        return False
    for old in path.parent.glob("lexicon-en-*.txt"):
        if old != path:
            old.unlink(missing_ok=True)  # another wordfreq install's list
    return True


@_reads_answer
def nonwords(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL when most words are not English words (gibberish, byte-level BPE debris).

    A word is unknown when `wordfreq.zipf_frequency(word, "en") == 0`. Numbers and single ASCII
    letters are left out of the count.

    Args:
        response: The model's answer.
        question: Unused; every text probe has the same signature.
        max_new_tokens: Unused.

    Returns:
        The `nonwords` Signal; SKIP when wordfreq is not installed.
    """
    known = _known_words()  # loaded on first use: most commands (compare, render) never read an answer
    if known is None:
        reason = "wordfreq is not installed; install it (pip install wordfreq) to check for non-words."
        return _signal(ProbeName.NONWORDS, Status.SKIP, None, reason)
    words = _lexicon_words(response.text)
    if not words:
        if any(c.isalnum() for c in response.text):
            reason = "The answer is only numbers or single letters; nothing to look up."
            return _signal(ProbeName.NONWORDS, Status.PASS, 1.0, reason, nonword_share=0.0, words=0, nonwords=0)
        reason = "The answer has no letters or digits at all, only symbols: check the dtype (fp16 overflow) "
        reason += "and the template."
        return _signal(ProbeName.NONWORDS, Status.FAIL, 0.0, reason, nonword_share=1.0, words=0, nonwords=0)
    unknown = [w for w in words if w.casefold() not in known]
    if unknown:  # the set is the fast path; wordfreq itself decides the rest (its own normalization)
        from wordfreq import zipf_frequency

        unknown = [w for w in unknown if zipf_frequency(w, "en") == 0]
    share = len(unknown) / len(words)
    evidence = {"nonword_share": round(share, 3), "words": len(words), "nonwords": len(unknown)}
    examples = ", ".join(repr(w) for w in list(dict.fromkeys(unknown))[:3])
    counted = f"{len(unknown)} of {len(words)} words are not English words (e.g. {examples})"
    if share >= th.NONWORD_FAIL and len(unknown) >= th.MIN_NONWORDS_TO_FAIL:
        reason = f"{counted}: gibberish; check the LLM weights, the tokenizer and the dtype."
        return _signal(ProbeName.NONWORDS, Status.FAIL, round(1 - share, 3), reason, **evidence)
    if share >= th.NONWORD_WARN:
        reason = f"{counted}; read the answer: names are fine, fragments are not."
        return _signal(ProbeName.NONWORDS, Status.WARN, round(1 - share, 3), reason, **evidence)
    reason = f"{len(words) - len(unknown)} of {len(words)} words are English words."
    return _signal(ProbeName.NONWORDS, Status.PASS, round(1 - share, 3), reason, **evidence)


# --- template_leak -----------------------------------------------------------------------------

# Tag forms only: "the user of the device" and a markdown "### Heading" are ordinary text.
_ROLE_TAGS = (
    re.compile(r"(?<!\w)(?:USER|ASSISTANT):"),  # case-sensitive: the vicuna_v1 roles
    # at a line start, after a separator or after a sentence; not "The Human: A Love Story"
    re.compile(r"(?:^[ \t]*|(?<=[#>])|(?<=[.!?][ \t]))Human:", re.MULTILINE),
    # the llava_v0 separator glued to a role or ending the text
    re.compile(r"(?<!#)###(?=\s*(?:Human|Assistant)\b)|(?<!#)###(?![#\s])|(?<!#)###(?=\s*$)"),
    re.compile(r"\[/?INST\]|<</?SYS>>|<\|im_start\|>"),
)
_SPECIAL_TOKENS = (
    re.compile(r"</?s>|<image>"),
    re.compile(r"<\|(?!im_start\|>)\w+\|>"),  # <|im_end|>, <|endoftext|>, <|eot_id|>, ...
    re.compile(r"<(?:unk|pad)>|\u2047", re.IGNORECASE),  # unknown/padding tokens decoded as text (<UNK>, ⁇)
)


@_reads_answer
def template_leak(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL when the answer contains a chat-template role tag or special token.

    Args:
        response: The model's answer.
        question: Unused; every text probe has the same signature.
        max_new_tokens: Unused.

    Returns:
        The `template_leak` Signal, naming the first tag found.
    """
    hits = sorted(
        (m.start(), m.group(0).strip(), kind)
        for kind, patterns in (("role tag", _ROLE_TAGS), ("special token", _SPECIAL_TOKENS))
        for pattern in patterns
        for m in pattern.finditer(response.text)
    )
    if not hits:
        reason = "No chat-template role tags or special tokens in the answer."
        return _signal(ProbeName.TEMPLATE_LEAK, Status.PASS, 1.0, reason, tags_found=0)
    position, tag, kind = hits[0]
    more = len({h[1] for h in hits}) - 1
    also = f" (and {more} other tag{'s' if more > 1 else ''})" if more else ""
    reason = f"The answer contains the {kind} {tag!r}{also}: the chat template probably does not match "
    reason += "the one the model was trained with."
    return _signal(ProbeName.TEMPLATE_LEAK, Status.FAIL, 0.0, reason, tags_found=len(hits), first_at_char=position)


# --- prompt_echo -------------------------------------------------------------------------------

_ECHO_WORD = re.compile(r"\w+(?:'\w+)*")


def _echo_words(text: str) -> list[str]:
    return _ECHO_WORD.findall(text.replace("<image>", " ").replace("\u2019", "'").lower())


@_reads_answer
def prompt_echo(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL when the answer repeats the question; WARN on a partial echo of a long question.

    An echo starts where the question starts, which tells it from a restatement
    ("Is the circle red?" -> "The circle is red." is an answer, not an echo). An answer that starts
    with the question's words and then goes on for max(12, the question's length) words of its own
    restates the question before answering (Bard and LLaVA do): no echo.

    Args:
        response: The model's answer.
        question: The question the model was asked.
        max_new_tokens: Unused.

    Returns:
        The `prompt_echo` Signal.
    """
    q, a = _echo_words(question), _echo_words(response.text)
    if not q or not a:
        reason = "No words to compare between the question and the answer."
        return _signal(ProbeName.PROMPT_ECHO, Status.PASS, 1.0, reason)
    prefix = next((i for i, (x, y) in enumerate(zip(q, a, strict=False)) if x != y), min(len(q), len(a)))
    # a near-verbatim start ("What colour is the circle" to "What color is the circle?"); the first
    # word must match, so "Is the big circle red?" -> "The big circle is red." is no echo
    near = SequenceMatcher(None, a[: len(q)], q, autojunk=False).ratio() if a[0] == q[0] else 0.0
    run = SequenceMatcher(None, a, q, autojunk=False).find_longest_match(0, len(a), 0, len(q)).size
    contained = run == len(q) >= th.MIN_QUESTION_WORDS_CONTAINED
    echo = 1.0 if a == q or contained else max(prefix / len(q), near)
    evidence = {
        "echo_share": round(echo, 3),
        "leading_words_echoed": prefix,
        "question_words": len(q),
        "answer_words": len(a),
    }
    echoed = len(q) if contained or near >= th.ECHO_WARN else prefix
    if a != q and len(a) - echoed >= max(th.ECHO_RESTATED_WORDS, len(q)):
        reason = f"The answer restates the question, then goes on for {len(a) - echoed} words of its own: an answer."
        return _signal(ProbeName.PROMPT_ECHO, Status.PASS, round(1 - echo, 3), reason, **evidence)
    if a == q or (len(q) >= th.MIN_QUESTION_WORDS and echo >= th.ECHO_FAIL):
        reason = "The answer repeats the question instead of answering it: the chat template probably does "
        reason += "not mark where the answer starts."
        return _signal(ProbeName.PROMPT_ECHO, Status.FAIL, round(1 - echo, 3), reason, **evidence)
    if len(q) >= th.MIN_QUESTION_WORDS_PARTIAL and (echo >= th.ECHO_WARN or prefix >= th.ECHO_WARN_LEADING_WORDS):
        reason = f"The answer starts by echoing the question (first {prefix} of its {len(q)} words verbatim); "
        reason += "check that the chat template marks where the answer starts."
        return _signal(ProbeName.PROMPT_ECHO, Status.WARN, round(1 - echo, 3), reason, **evidence)
    reason = "The answer does not echo the question."
    return _signal(ProbeName.PROMPT_ECHO, Status.PASS, round(1 - echo, 3), reason, **evidence)




@_reads_answer
def word_salad(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL when an English answer of 20+ words has (next to) no function words or very short words.

    Real words in no grammatical order pass `nonwords`; they lack what every healthy answer has:
    function words (the, of, is: at least 21% of the words of every healthy real answer) and a
    mean word length of 2.7+ letters (see probes/salad.py and judge/thresholds.py).

    Args:
        response: The model's answer.
        question: Unused; every text probe has the same signature.
        max_new_tokens: Unused.

    Returns:
        The `word_salad` Signal; PASS for short or non-English answers, SKIP without wordfreq.
    """
    try:
        found = salad.word_salad(response.text)
    except ImportError:
        reason = "wordfreq is not installed; install it (pip install wordfreq) to check for word salad."
        return _signal(ProbeName.WORD_SALAD, Status.SKIP, None, reason)
    if found is None:
        reason = f"Fewer than {th.SALAD_MIN_WORDS} words, or not mostly common English words: nothing to judge."
        return _signal(ProbeName.WORD_SALAD, Status.PASS, 1.0, reason)
    share, length = found["function_word_share"], found["mean_word_length"]
    counted = f"{share:.0%} of its {found['words']} words are function words (the, of, is ...), mean length {length}"
    if th.WORD_SALAD_FUNCTION.failed(share) or th.WORD_SALAD_LENGTH.failed(length):
        reason = f"Word salad: {counted}; real words in no grammatical order: check the LLM weights, the "
        reason += "projector and the template."
        return _signal(ProbeName.WORD_SALAD, Status.FAIL, 0.0, reason, **found)
    if share < th.WORD_SALAD_FUNCTION_WARN or length < th.WORD_SALAD_LENGTH_WARN:
        return _signal(ProbeName.WORD_SALAD, Status.WARN, 0.5, f"Borderline: {counted}; read the answer.", **found)
    return _signal(ProbeName.WORD_SALAD, Status.PASS, 1.0, f"Reads as English: {counted}.", **found)


@_reads_answer
def symbol_salad(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL when many tokens are only symbols or letters glued to code symbols (`}`RESS`, `<UNK>`).

    Args:
        response: The model's answer.
        question: Unused; every text probe has the same signature.
        max_new_tokens: Unused.

    Returns:
        The `symbol_salad` Signal (fenced code and `$$` math left out).
    """
    found = salad.symbol_salad(response.text)
    if found is None:
        return _signal(ProbeName.SYMBOL_SALAD, Status.PASS, 1.0, "Too few tokens to judge.")
    share = found["junk_share"]
    counted = f"{found['junk_tokens']} of {found['tokens']} tokens are symbols or letters glued to code symbols"
    if found["junk_tokens"] < th.SYMBOL_SALAD_MIN_JUNK:
        return _signal(ProbeName.SYMBOL_SALAD, Status.PASS, round(1 - share, 3), f"{counted}: ordinary.", **found)
    if th.SYMBOL_SALAD.failed(share):
        reason = f"Symbol salad: {counted}; check the dtype (fp16 overflow), the tokenizer and the template."
        return _signal(ProbeName.SYMBOL_SALAD, Status.FAIL, round(1 - share, 3), reason, **found)
    if share >= th.SYMBOL_SALAD_WARN:
        return _signal(ProbeName.SYMBOL_SALAD, Status.WARN, round(1 - share, 3), f"Borderline: {counted}.", **found)
    return _signal(ProbeName.SYMBOL_SALAD, Status.PASS, round(1 - share, 3), f"{counted}: ordinary.", **found)


# --- too_short ---------------------------------------------------------------------------------

_DESCRIBE = re.compile(
    r"\b(?:describe|description|caption|explain|elaborate|tell me about|what is happening|what's happening|"
    r"what happens|summari[sz]e|in detail|narrate)\b",
    re.IGNORECASE,
)
_BRIEF = re.compile(
    r"\b(?:single word|one word|a word|short phrase|a phrase|briefly|short answer|yes or no|one or two words|"
    r"few words|the letter|option)\b",
    re.IGNORECASE,
)
_IN_N_WORDS = re.compile(r"\bin (\d+) words", re.IGNORECASE)
_REAL_WORD = re.compile(r"[^\W\d_]{2,}")


def _asks_for_a_description(question: str) -> bool:
    if not _DESCRIBE.search(question) or _BRIEF.search(question):
        return False
    limit = _IN_N_WORDS.search(question)
    return limit is None or int(limit.group(1)) >= 10


@_reads_answer
def too_short(response: Response, question: str, max_new_tokens: int) -> Signal:
    """FAIL when a request for a description gets one word ("The", "na"); WARN on two or three.

    Only questions that ask to describe, caption or explain, and do not ask for a word or a short
    answer, are judged; a published llava-onevision-qwen2-7b-ov-hf once answered "Depository Photos" (a watermark) to
    "Describe everyone in the picture": two words warn, they do not fail.

    Args:
        response: The model's answer.
        question: The question the model was asked.
        max_new_tokens: Unused.

    Returns:
        The `too_short` Signal.
    """
    if not _asks_for_a_description(question):
        return _signal(ProbeName.TOO_SHORT, Status.PASS, 1.0, "The question does not ask for a description.")
    words = len(_REAL_WORD.findall(response.text))
    evidence = {"words": words}
    if th.TOO_SHORT.failed(words):
        reason = f"A description was asked for and the answer has {words} word(s): generation stopped at once; "
        reason += "check the stop string, the template and batched padding."
        return _signal(ProbeName.TOO_SHORT, Status.FAIL, 0.0, reason, **evidence)
    if words <= th.TOO_SHORT_WARN:
        return _signal(ProbeName.TOO_SHORT, Status.WARN, 0.5, f"A description was asked for; the answer has {words} words.", **evidence)
    return _signal(ProbeName.TOO_SHORT, Status.PASS, 1.0, f"The answer has {words} words.", **evidence)
