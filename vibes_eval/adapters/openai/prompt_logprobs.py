"""Reference likelihoods over a server: the prompt log-probability extension, client and server side.

The request and response shapes are vLLM's (its chat-completions API takes the extra fields
`prompt_logprobs`, `add_generation_prompt` and `continue_final_message`):

    request:  {"model": M, "messages": [user: image_url + text, assistant: REFERENCE],
               "add_generation_prompt": false, "continue_final_message": false,
               "prompt_logprobs": 1, "max_tokens": 1, "temperature": 0}
    response: {"prompt_logprobs": [null, {"<token id>": {"logprob": -0.1, "rank": 1,
               "decoded_token": "red"}, ...}, ...], "choices": [...], ...}

One entry per prompt token: None for the first, then a dict holding the prompt token itself
(under its own rank) and the top k tokens (rank 1..k). The completions API puts the same list
at `choices[0].prompt_logprobs`; both places are read.

A reference's score is the mean log-probability of its tokens, the tokens the assistant
message adds after the generation prompt (the reference and the end of the turn), as the
in-process scorer does (answer + end-of-sequence). Their number is measured once per
(question, reference): the same conversation asked with `add_generation_prompt: true` and no
assistant message has that many fewer prompt tokens. It does not depend on the image (the
image's tokens come before the answer), so every other image's row reuses it.

`vibes-eval serve` implements the same extension (`serve_prompt_logprobs`), rendering the
answer as the in-process scorer does, so a served checkpoint scores as it does in-process.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = [
    "ANSWER_TOKENS_MAX",
    "ProtocolError",
    "answer_request",
    "mean_answer_logprob",
    "parse_prompt_logprobs",
    "probe_support",
    "render_chat_template",
    "score_over_server",
    "scoring_payload",
    "serve_prompt_logprobs",
    "split_answer",
    "template_jinja",
]

ANSWER_TOKENS_MAX = 512
"""A reference longer than this many tokens is not scored (a bound on what a server's answer may claim)."""
PROMPT_TOKENS_MAX = 32768
"""A prompt_logprobs list longer than this is refused as malformed (a bound on the response)."""
TOP_MAX = 20
"""`vibes-eval serve` returns at most this many top tokens per position."""


class ProtocolError(ValueError):
    """The server's answer does not hold usable prompt log-probabilities (one line saying what is missing)."""


CHAT_TEMPLATE_MAX = 16_000
"""Characters of a request's `chat_template` that `vibes-eval serve` accepts."""


def template_jinja(name: str) -> str:
    """Known template `name` (adapters/templates.py) as a chat template: the user turn, then ' ANSWER' + eos for an assistant turn.

    What the template-fit rows send as vLLM's `chat_template` field: the conversation rendered
    as a checkpoint trained with that template saw it (its image placeholder is the literal
    `<image>`, as the llava-hf processors expect), the answer scored as the in-process scorer does.
    """
    from vibes_eval.adapters.templates import TEMPLATES

    before, _, after = TEMPLATES[name].partition("{q}")

    def raw(text: str) -> str:
        return "{% raw %}" + text + "{% endraw %}"

    return ("{% for m in messages %}{% if m.role == 'user' %}" + raw(before)
            + "{% for c in m.content %}{% if c.type == 'text' %}{{ c.text }}{% endif %}{% endfor %}" + raw(after)
            + "{% elif m.role == 'assistant' %} {{ m.content }}{{ eos_token }}{% endif %}{% endfor %}")


def scoring_payload(model: str, image_uri: str, question: str, answer: str | None, template: str | None = None) -> dict:
    """The request body: with `answer`, the conversation including it; without, up to the generation prompt.

    With `template` (a known template's name), the conversation is rendered with that template
    (vLLM's `chat_template` request field) instead of the server's own.
    """
    messages: list[dict[str, Any]] = [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image_uri}},
        {"type": "text", "text": question},
    ]}]
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return {
        "model": model,
        "messages": messages,
        "add_generation_prompt": answer is None,
        "continue_final_message": False,
        "prompt_logprobs": 1,
        "max_tokens": 1,
        "temperature": 0,
        **({"chat_template": template_jinja(template)} if template else {}),
    }


def _token_logprob(entry: Any, where: str) -> float:
    """The prompt token's log-probability in one position's dict (its own rank; the top-1 has rank 1)."""
    if not isinstance(entry, dict) or not entry:
        raise ProtocolError(f"{where}: expected a non-empty object of token log-probabilities")
    items = list(entry.values())  # vLLM puts the prompt token first, then the top k
    if len(items) == 2:  # we ask for k = 1: the prompt token and a different top-1; the prompt token is not ranked 1
        own = [it for it in items if isinstance(it, dict) and it.get("rank") != 1]
        items = own if len(own) == 1 else items
    value = items[0].get("logprob") if isinstance(items[0], dict) else items[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value > 1e-6:
        raise ProtocolError(f"{where}: logprob must be a number <= 0, got {str(value)[:40]}")
    return float(value)


def parse_prompt_logprobs(data: Any) -> list[float | None]:
    """Per prompt token, its log-probability (None for the first token); ProtocolError if absent or malformed."""
    lst = data.get("prompt_logprobs") if isinstance(data, dict) else None
    if lst is None and isinstance(data, dict):
        choices = data.get("choices")
        if isinstance(choices, list) and choices and isinstance(choices[0], dict):
            lst = choices[0].get("prompt_logprobs")
    if not isinstance(lst, list) or not lst:
        raise ProtocolError("no prompt_logprobs in the answer (the server does not offer prompt log-probabilities)")
    if len(lst) > PROMPT_TOKENS_MAX:
        raise ProtocolError(f"prompt_logprobs: {len(lst)} entries, more than {PROMPT_TOKENS_MAX}")
    return [None if e is None else _token_logprob(e, f"prompt_logprobs[{i}]") for i, e in enumerate(lst)]


def mean_answer_logprob(full: list[float | None], answer_tokens: int) -> float | None:
    """Mean log-probability of the last `answer_tokens` prompt tokens; None when there are none."""
    if answer_tokens <= 0:
        return None
    if answer_tokens > min(len(full) - 1, ANSWER_TOKENS_MAX):
        raise ProtocolError(f"the answer has {answer_tokens} tokens but the prompt only {len(full)}")
    tail = full[-answer_tokens:]
    if any(v is None for v in tail):
        raise ProtocolError("prompt_logprobs: a null entry inside the answer")
    return sum(tail) / answer_tokens  # type: ignore[arg-type]


# -- the client side (OpenAIAdapter) -----------------------------------------------------------------


def probe_support(call: Callable[[dict], Any], model: str, image_uri: str) -> tuple[bool, str]:
    """Ask once, with a small grey image: (whether the server returns prompt log-probabilities, a note for the fingerprint)."""
    from vibes_eval.errors import RemoteError

    try:
        full = parse_prompt_logprobs(call(scoring_payload(model, image_uri, "?", None)))
    except (RemoteError, ProtocolError) as e:
        return False, f"not offered: {e}"
    return True, f"offered (vLLM prompt_logprobs shape; {len(full)} prompt tokens in the probe)"


def score_over_server(call: Callable[[dict], Any], image_uri: Callable[[Any, str], str], model: str, requests: list,
                      targets: list[str], concurrency: int) -> list[float | None]:
    """Mean log-probability per token of each target after its request, from the server's prompt log-probabilities.

    One request per (request, target) and one more per distinct (question, target, template) to
    count the answer's tokens. Rows asking for another template send it as the request's
    `chat_template` (the template-fit probe). Raises ProtocolError naming how many requests failed and the first reason: the
    runner then reports the likelihood probes as not run rather than judging on a partial matrix.
    """
    from concurrent.futures import ThreadPoolExecutor

    from vibes_eval.errors import RemoteError

    rows = [i for i, r in enumerate(requests) if targets[i] and targets[i].strip()]
    first: dict[tuple[str, str, str | None], int] = {}
    for i in rows:
        first.setdefault((requests[i].question, targets[i].strip(), requests[i].template), i)
    jobs = [(i, True) for i in rows] + [(i, False) for i in first.values()]

    def run(job):
        i, with_answer = job
        r = requests[i]
        try:
            payload = scoring_payload(model, image_uri(r.image, r.variant), r.question,
                                      targets[i].strip() if with_answer else None, r.template)
            return parse_prompt_logprobs(call(payload)), None
        except (RemoteError, ProtocolError, OSError) as e:  # OSError: the image file cannot be read
            return None, f"{r.prompt_id}/{r.variant}: {e}"

    values: list[float | None] = [None] * len(requests)
    if not jobs:
        return values
    pool = ThreadPoolExecutor(max_workers=max(1, min(concurrency, len(jobs))), thread_name_prefix="vibes-logprobs")
    try:
        results = list(pool.map(run, jobs))
    except BaseException:  # Ctrl-C: return at once (the adapter cancels what is in flight), start nothing more
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    full = {i: res for (i, answered), res in zip(jobs, results) if answered}
    prefix = {i: res for (i, answered), res in zip(jobs, results) if not answered}
    errors = [err for _, err in results if err]
    for i in rows:
        j = first[(requests[i].question, targets[i].strip(), requests[i].template)]
        if full[i][0] is None or full[j][0] is None or prefix[j][0] is None:
            continue
        try:
            values[i] = mean_answer_logprob(full[i][0], len(full[j][0]) - len(prefix[j][0]))
        except ProtocolError as e:
            errors.append(f"{requests[i].prompt_id}/{requests[i].variant}: {e}")
    if errors:
        raise ProtocolError(f"{len(errors)} of {len(jobs)} prompt-logprob requests failed; first: {errors[0]}")
    return values


# -- the server side (`vibes-eval serve`) ------------------------------------------------------------


def split_answer(messages: Any, add_generation_prompt: Any) -> tuple[Any, str | None]:
    """(the messages up to the user turn, the final assistant message's text or None); ValueError on a shape we do not serve."""
    if not isinstance(add_generation_prompt, bool):
        raise ValueError("`add_generation_prompt` must be true or false")
    if not isinstance(messages, list) or not messages:
        raise ValueError("`messages` must be a non-empty list")
    last = messages[-1]
    if not (isinstance(last, dict) and last.get("role") == "assistant"):
        if not add_generation_prompt:
            raise ValueError("with a final user message, `add_generation_prompt` must be true")
        return messages, None
    if add_generation_prompt:
        raise ValueError("with a final assistant message, `add_generation_prompt` must be false")
    content = last.get("content")
    if isinstance(content, list):  # text parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    if not isinstance(content, str) or not content.strip():
        raise ValueError("the assistant message needs a non-empty text `content`")
    return messages[:-1], content


def answer_request(adapter, body: dict, one_image_and_text, lock) -> dict:
    """The server side of one request carrying `prompt_logprobs`: the answer's fields (choices, prompt_logprobs, usage).

    The conversation is one user message (image + question), optionally followed by the
    assistant's answer (then `add_generation_prompt` must be false): the answer is scored as
    `HFAdapter.score` scores a reference, or, with a `chat_template`, as that template renders it
    (in a bounded sandbox). `one_image_and_text(messages)` is the server's own parser of the user
    turn. ValueError (one line, a 400) for what is not served; the forward pass runs under `lock`.
    """
    from vibes_eval.limits import MAX_QUESTION_CHARS

    top = body["prompt_logprobs"]
    if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= TOP_MAX:
        raise ValueError(f"`prompt_logprobs` must be an integer from 0 to {TOP_MAX}")
    if body.get("continue_final_message"):
        raise ValueError("`continue_final_message` is not supported")
    messages, answer = split_answer(body.get("messages"), body.get("add_generation_prompt", True))
    if answer is not None and len(answer) > MAX_QUESTION_CHARS:
        raise ValueError(f"the answer is {len(answer):,} characters; at most {MAX_QUESTION_CHARS:,} are scored")
    image, question = one_image_and_text(messages)
    with lock:
        text = None
        if body.get("chat_template") is not None:
            text = render_chat_template(body["chat_template"], body["messages"], answer is None, adapter.processor.tokenizer)
        logprobs = serve_prompt_logprobs(adapter, image, question, answer, top, text=text)
    return {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "length"}],
        "prompt_logprobs": logprobs,
        "usage": {"prompt_tokens": len(logprobs), "completion_tokens": 0, "total_tokens": len(logprobs)},
    }


def render_chat_template(source: str, messages: list, add_generation_prompt: bool, tokenizer) -> str:
    """A request's `chat_template` rendered in a bounded sandbox (template_sandbox); ValueError in one line."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from vibes_eval.adapters.template_sandbox import TemplateTooCostly, check_template

    if not isinstance(source, str) or not 0 < len(source) <= CHAT_TEMPLATE_MAX:
        raise ValueError(f"`chat_template` must be a string of 1 to {CHAT_TEMPLATE_MAX:,} characters")
    context = {"messages": messages, "add_generation_prompt": add_generation_prompt,
               "eos_token": tokenizer.eos_token or "", "bos_token": tokenizer.bos_token or ""}
    try:
        check_template(source, context)
        return ImmutableSandboxedEnvironment().from_string(source).render(**context)
    except (TemplateTooCostly, TemplateError) as e:
        raise ValueError(f"`chat_template`: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from None


def serve_prompt_logprobs(adapter, image, question: str, answer: str | None, top: int,
                          max_tokens: int = PROMPT_TOKENS_MAX, on_text: Callable[[str], None] | None = None,
                          text: str | None = None) -> list:
    """vLLM-shaped prompt_logprobs of one conversation under a loaded HFAdapter (one forward pass).

    The text is the checkpoint's generation prompt, then (with `answer`) a space, the answer and
    the end-of-sequence token: exactly what `HFAdapter.score` scores; or `text`, already rendered
    (a request's own `chat_template`). ValueError when the prompt is longer than `max_tokens`.
    """
    import torch

    tok = adapter.processor.tokenizer
    if text is None:
        text = adapter.render_prompt(question)
        if answer is not None:
            text = text + " " + answer.strip() + (tok.eos_token or "")
    if on_text:
        on_text(text)
    enc = adapter.encode([text], [image])
    ids = enc["input_ids"][0]
    if ids.shape[0] > max_tokens:
        raise ValueError(f"the prompt has {ids.shape[0]} tokens, more than {max_tokens}")
    logits = adapter.prompt_logits(enc)[0, :-1].float()
    lp = torch.log_softmax(logits, dim=-1)
    own = lp.gather(-1, ids[1:].unsqueeze(-1)).squeeze(-1)
    ranks = (lp > own.unsqueeze(-1)).sum(-1) + 1
    top = max(0, min(int(top), TOP_MAX))
    best = lp.topk(top, dim=-1) if top else None
    out: list = [None]
    for i in range(ids.shape[0] - 1):
        tid = int(ids[i + 1])
        entry = {str(tid): {"logprob": float(own[i]), "rank": int(ranks[i]), "decoded_token": tok.decode([tid])}}
        if best is not None:
            for r, (v, t) in enumerate(zip(best.values[i].tolist(), best.indices[i].tolist()), start=1):
                entry.setdefault(str(t), {"logprob": float(v), "rank": r, "decoded_token": tok.decode([t])})
        out.append(entry)
    return out
