"""A checkpoint's chat template rendered once in a bounded sandbox before transformers renders it.

A chat template is code shipped with the checkpoint (jinja, sandboxed by transformers), and the
sandbox bounds what it may touch but not how long it runs or how much it writes: two nested
`range(100000)` loops run for hours, `"x" * 10**10` asks for 10 GB. `check_template` renders the
template the way the run will use it, under:

- a budget of loop items over every `range()` call together (MAX_RANGE_ITEMS),
- size checks on `*` and `**` (a string, list or number may not grow past MAX_OUTPUT_CHARS / 4096 bits),
- a cap on the output (MAX_OUTPUT_CHARS) and a deadline (MAX_SECONDS, checked on every line the
  template's compiled code runs),

and raises TemplateTooCostly with one line when it passes one. Any other error is left for
transformers to report as it always does.
"""

from __future__ import annotations

import sys
import time
from typing import Any

__all__ = ["MAX_OUTPUT_CHARS", "MAX_RANGE_ITEMS", "MAX_SECONDS", "TemplateTooCostly", "check_processor_template", "check_template"]

MAX_RANGE_ITEMS = 100_000
MAX_OUTPUT_CHARS = 1_000_000
MAX_SECONDS = 5.0


class TemplateTooCostly(Exception):
    """Rendering the template passed a bound (the message says which)."""


def _generation_tag():
    """`{% generation %}...{% endgeneration %}` (transformers marks the assistant's tokens with it): its body, rendered.

    Without it the guard could not compile llava-1.5's own template, nor any that uses the tag,
    and would leave it unchecked.
    """
    from jinja2.ext import Extension

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):
            next(parser.stream)
            return parser.parse_statements(("name:endgeneration",), drop_needle=True)

    return Generation


def _environment():
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Guarded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context, operator, left, right):
            if operator == "**":
                if isinstance(left, (int, float)) and isinstance(right, (int, float)) and abs(right) > 64 and abs(left) > 1:
                    raise TemplateTooCostly(f"the chat template computes {left!r} ** {right!r}")
            elif operator == "*":
                for seq, n in ((left, right), (right, left)):
                    if isinstance(seq, (str, list, tuple)) and isinstance(n, int) and len(seq) * n > MAX_OUTPUT_CHARS:
                        raise TemplateTooCostly(f"the chat template builds a value of {len(seq) * n:,} items")
                if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > 4096:
                    raise TemplateTooCostly("the chat template multiplies numbers past 4096 bits")
            return super().call_binop(context, operator, left, right)

    env = Guarded(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols, _generation_tag()])
    budget = [MAX_RANGE_ITEMS]

    def counted_range(*args):
        r = range(*args)
        budget[0] -= len(r)
        if budget[0] < 0:
            raise TemplateTooCostly(f"the chat template loops over more than {MAX_RANGE_ITEMS:,} range() items")
        return r

    def raise_exception(message):
        from jinja2.exceptions import TemplateError

        raise TemplateError(message)

    def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        import json

        return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    env.globals.update(range=counted_range, raise_exception=raise_exception, strftime_now=lambda fmt: time.strftime(fmt))
    env.filters["tojson"] = tojson
    return env


def check_template(source: str, context: dict[str, Any]) -> str | None:
    """Render `source` with `context` (messages, add_generation_prompt, special tokens) within the bounds.

    Returns the text rendered, or None where the template does not compile or render here
    (transformers reports that in its own words when it renders it next).

    Raises:
        TemplateTooCostly: one line saying which bound was passed.
    """
    env = _environment()
    try:
        template = env.from_string(source)
    except Exception:  # noqa: BLE001 - a syntax error is transformers' to report, in its words
        return None
    deadline = time.monotonic() + MAX_SECONDS

    def tracer(frame, event, arg):
        if time.monotonic() > deadline:
            raise TemplateTooCostly(f"rendering the chat template took more than {MAX_SECONDS:g} s")
        return tracer

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        size, chunks = 0, []
        for chunk in template.generate(**context):
            size += len(chunk)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateTooCostly(f"the chat template writes more than {MAX_OUTPUT_CHARS:,} characters")
            chunks.append(chunk)
    except TemplateTooCostly:
        raise
    except Exception:  # noqa: BLE001 - not a bound: transformers renders it next and reports its own error
        return None
    finally:
        sys.settrace(previous)
    return "".join(chunks)


def check_processor_template(processor, messages: list) -> str | None:
    """`check_template` on a transformers processor's chat template (its tokenizer's special tokens in context)."""
    source = getattr(processor, "chat_template", None)
    if isinstance(source, dict):
        source = source.get("default") or next(iter(source.values()), None)
    if not isinstance(source, str):
        return None
    tok = getattr(processor, "tokenizer", None)
    special = {k: v for k, v in (getattr(tok, "special_tokens_map", None) or {}).items() if isinstance(v, str)}
    return check_template(source, {"messages": messages, "add_generation_prompt": True, **special})
