"""SGLang's native API, client side: the request bodies, the answers, and the image-offset check.

SGLang's `/generate` (sgl-project/sglang `managers/io_struct.py: GenerateReqInput`) takes the prompt
as rendered text with the image placeholder (`<image>` for LLaVA) and the image in `image_data`.
Asked with `return_logprob: true` and `logprob_start_len: 0`, its `meta_info.input_token_logprobs`
holds one `[logprob, token_id, text]` per prompt token, the first with a null logprob, counted on the
*expanded* prompt: the one placeholder token replaced by the image's N feature positions (their ids
are pad values derived from the image's hash). `meta_info.prompt_tokens` is that expanded count.
`/tokenize` returns the unexpanded ids (one placeholder per image).

A reference's score is the mean log-probability of its last n tokens, n counted on the unexpanded
text (the reference and the end-of-turn string after the prompt). Before it is trusted the returned
ids are checked against the unexpanded ones: everything before the placeholder and everything after
it must match exactly, with N >= 1 image positions between them. Clients computing positions on
the unexpanded ids, or a server whose expansion count and offsets disagree (sglang PR #2597, and
later reports of drift where one placeholder expands to many tokens), would score the wrong span;
here such an answer is a `DriftError` and the likelihood probes are skipped with its reason.
"""

from __future__ import annotations

import math
from typing import Any

from vibes_eval.adapters.openai.prompt_logprobs import ANSWER_TOKENS_MAX, PROMPT_TOKENS_MAX, ProtocolError

__all__ = ["DriftError", "checked_answer_logprob", "generate_payload", "parse_generation", "parse_tokens", "scoring_payload",
           "tokenize_payload"]


class DriftError(ProtocolError):
    """The image's tokens are not where its placeholder is: the span read as the reference is not trusted."""


def generate_payload(text: str, image_uri: str, max_new_tokens: int, stop: list[str]) -> dict:
    """A greedy generation: the rendered prompt, the image, SGLang's sampling_params."""
    params: dict[str, Any] = {"max_new_tokens": max_new_tokens, "temperature": 0}
    if stop:
        params["stop"] = list(stop)
    return {"text": text, "image_data": image_uri, "sampling_params": params}


def scoring_payload(text: str, image_uri: str) -> dict:
    """Prompt log-probabilities of the whole (expanded) prompt, each entry's id and text."""
    return {"text": text, "image_data": image_uri, "sampling_params": {"max_new_tokens": 1, "temperature": 0},
            "return_logprob": True, "logprob_start_len": 0, "return_text_in_logprobs": True}


def tokenize_payload(model: str, text: str) -> dict:
    return {"model": model, "prompt": text, "add_special_tokens": True}


def parse_tokens(data: Any) -> list[int]:
    """`/tokenize`'s answer -> the ids; ProtocolError when it has none."""
    ids = data.get("tokens") if isinstance(data, dict) else None
    if not isinstance(ids, list) or not ids or not all(isinstance(t, int) and not isinstance(t, bool) for t in ids):
        raise ProtocolError("/tokenize: no `tokens` list of integers in the answer")
    if len(ids) > PROMPT_TOKENS_MAX:
        raise ProtocolError(f"/tokenize: {len(ids)} tokens, more than {PROMPT_TOKENS_MAX}")
    return ids


def parse_generation(data: Any) -> tuple[str, str, int, str | None]:
    """`/generate`'s answer -> (text, finish 'eos'|'length'|'error', completion tokens, error or None)."""
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise ProtocolError("/generate: no `text` in the answer")
    meta = data.get("meta_info") if isinstance(data.get("meta_info"), dict) else {}
    reason = meta.get("finish_reason") if isinstance(meta.get("finish_reason"), dict) else {}
    kind = reason.get("type")
    n = meta.get("completion_tokens")
    n = n if isinstance(n, int) and not isinstance(n, bool) and n >= 0 else 0
    if kind == "abort":
        return "", "error", n, f"the server aborted the request: {str(reason.get('message') or '?')[:300]}"
    return data["text"], "length" if kind == "length" else "eos", n, None


def _entries(data: Any) -> tuple[list[int], list[float | None], int]:
    meta = data.get("meta_info") if isinstance(data, dict) else None
    lst = meta.get("input_token_logprobs") if isinstance(meta, dict) else None
    if not isinstance(lst, list) or not lst:
        raise ProtocolError("no meta_info.input_token_logprobs in the answer (the server returned no prompt log-probabilities)")
    if len(lst) > PROMPT_TOKENS_MAX:
        raise ProtocolError(f"input_token_logprobs: {len(lst)} entries, more than {PROMPT_TOKENS_MAX}")
    ids: list[int] = []
    values: list[float | None] = []
    for i, e in enumerate(lst):
        if not isinstance(e, (list, tuple)) or len(e) < 2 or not isinstance(e[1], int) or isinstance(e[1], bool):
            raise ProtocolError(f"input_token_logprobs[{i}]: expected [logprob, token_id, text]")
        v = e[0]
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or math.isnan(v) or v > 1e-6):
            raise ProtocolError(f"input_token_logprobs[{i}]: logprob must be a number <= 0 or null, got {str(v)[:40]}")
        ids.append(e[1])
        values.append(None if v is None else float(v))
    total = meta.get("prompt_tokens")
    if not isinstance(total, int) or isinstance(total, bool):
        raise ProtocolError("no meta_info.prompt_tokens in the answer")
    return ids, values, total


def checked_answer_logprob(data: Any, text_ids: list[int], image_id: int, answer_tokens: int) -> tuple[float, int]:
    """(mean log-probability of the last `answer_tokens` prompt tokens, image positions), after the offset check.

    Args:
        data: `/generate`'s answer to `scoring_payload`.
        text_ids: `/tokenize` of the same text (unexpanded: `image_id` once, where the image goes).
        image_id: the id of the image placeholder token.
        answer_tokens: the reference's tokens (and the end-of-turn string's) at the end of the text.

    Raises:
        DriftError: the returned ids do not put the image's positions where its placeholder is.
        ProtocolError: the answer is malformed.
    """
    ids, values, total = _entries(data)
    if len(ids) != total:
        raise DriftError(f"{len(ids)} log-probabilities for a prompt of {total} tokens (meta_info.prompt_tokens)")
    if text_ids.count(image_id) != 1:
        raise ProtocolError(f"the prompt text has {text_ids.count(image_id)} image placeholders, not 1")
    if not 0 < answer_tokens <= ANSWER_TOKENS_MAX:
        raise ProtocolError(f"the reference has {answer_tokens} tokens")
    at = text_ids.index(image_id)
    after = len(text_ids) - at - 1
    image = len(ids) - len(text_ids) + 1
    if answer_tokens > after:
        raise ProtocolError("the reference is not after the image")
    if image < 1 or ids[:at] != text_ids[:at] or ids[len(ids) - after :] != text_ids[at + 1 :]:
        left = next((k for k, (x, y) in enumerate(zip(ids, text_ids)) if x != y), min(len(ids), len(text_ids)))
        raise DriftError(f"the image's {image} positions are not where its placeholder is (token {at}): the returned ids "
                         f"leave the prompt's text at token {left} and do not end with the {after} text tokens after the "
                         f"placeholder; the reference's span would be misread")
    tail_values = values[-answer_tokens:]
    if any(v is None for v in tail_values):
        raise ProtocolError("input_token_logprobs: a null logprob inside the reference")
    return sum(tail_values) / answer_tokens, image  # type: ignore[arg-type]
