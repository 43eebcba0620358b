"""What an OpenAI-compatible server answers: a chat.completion read into a Response, an error body read into words.

Anything malformed is an error on that prompt only (never a crash of the run); answers are
redacted and cut at limits.MAX_ANSWER_CHARS.
"""

from __future__ import annotations

import json
from typing import Any

from vibes_eval.errors import ErrorKind
from vibes_eval.limits import MAX_ANSWER_CHARS
from vibes_eval.records import Request, Response
from vibes_eval.safety import redact, short

__all__ = ["KINDS", "parse_answer", "server_code", "server_message"]

_FINISH = {"stop": "eos", "eos": "eos", "length": "length"}


def server_message(body: bytes) -> str:
    """The human part of an error body: OpenAI's {"error": {"message"}}, FastAPI's {"detail"}, or the text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return short(text, 300) or "(empty body)"
    err = data.get("error", data.get("detail", data.get("message"))) if isinstance(data, dict) else None
    if isinstance(err, dict):
        err = err.get("message") or err
    return short(err if isinstance(err, str) else json.dumps(err if err is not None else data, default=str)[:1200], 300)


KINDS = {k.value: k for k in ErrorKind}
"""An error code `vibes-eval serve` sends -> the kind of crash it names."""


def server_code(body: bytes) -> str | None:
    """OpenAI's {"error": {"code": ...}}, if the body has one."""
    try:
        err = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return None
    code = err.get("code") if isinstance(err, dict) else None
    return code if isinstance(code, str) else None


def parse_answer(r: Request, data: Any, url: str) -> Response:
    """The Response in a chat.completion body; anything malformed is an error on this prompt only."""
    def error(msg: str) -> Response:
        return Response(prompt_id=r.prompt_id, variant=r.variant, finish="error", error=redact(msg),
                        error_kind=ErrorKind.REMOTE)

    choices = data.get("choices") if isinstance(data, dict) else None
    choice = choices[0] if isinstance(choices, list) and choices else None
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        try:
            shown = json.dumps(data, default=str)[:400]
        except (ValueError, RecursionError):
            shown = type(data).__name__
        return error(f"{url}: no choices[0].message in the answer: {short(shown, 200)}")
    content = message.get("content")
    if isinstance(content, list):  # some servers answer in content parts
        content = "".join(p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    if content is not None and not isinstance(content, str):
        return error(f"{url}: choices[0].message.content is {type(content).__name__} {short(content, 40)}, not text")
    reason = choice.get("finish_reason")
    if reason is not None and not isinstance(reason, str):
        return error(f"{url}: choices[0].finish_reason is {type(reason).__name__} {short(reason, 40)}, not text")
    finish = _FINISH.get(reason, "eos")
    text = (content or "").strip()
    if len(text) > MAX_ANSWER_CHARS:  # a 10 MB answer must not become a 100 MB report: cut and say so
        text = text[:MAX_ANSWER_CHARS] + f" … [cut by vibes-eval: the answer was {len(text):,} characters]"
        finish = "length"
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    tokens = usage.get("completion_tokens")
    return Response(
        prompt_id=r.prompt_id, variant=r.variant, text=redact(text),
        new_tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens >= 0 else 0,
        finish=finish,
    )
