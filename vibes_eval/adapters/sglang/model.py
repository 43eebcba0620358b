"""The SGLang loader: a checkpoint behind SGLang's native API (`--adapter sglang`, or detected from the server).

SGLang's OpenAI-compatible chat endpoint returns no prompt log-probabilities; its native
`POST /generate` does, with the image in the prompt (`return_logprob`, `logprob_start_len`). It
takes the prompt as rendered text, so this adapter renders it with a known template: `--template`,
else the family template of the architecture the server reports (`GET /model_info`), the same
text the in-process scorer sees. Generation goes through `/generate` too, so answers and
likelihoods share one rendering, and `template_fit` can splice in other templates' cues.

Every likelihood is checked before it is trusted (`native.checked_answer_logprob`): the returned ids
must hold the text before the image placeholder, the image's positions, then exactly the text
after it; otherwise (the offset drift reported when one placeholder expands to many image tokens)
the probes are skipped with the reason, never fed a wrong number. One checked request at open
decides whether scoring is offered at all.

The HTTP side (deadlines, retries, no redirects, key redaction) is OpenAIAdapter's.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vibes_eval.adapters.base import Adapter, AdapterSpec
from vibes_eval.adapters.openai.model import DEFAULT_CONCURRENCY, DEFAULT_TIMEOUT, OpenAIAdapter, _encode_png
from vibes_eval.adapters.openai.prompt_logprobs import ProtocolError
from vibes_eval.adapters.sglang import native
from vibes_eval.errors import ErrorKind, RemoteError, UsageError
from vibes_eval.limits import MAX_ANSWER_CHARS
from vibes_eval.records import Request, Response
from vibes_eval.safety import redact, redact_deep, short

if TYPE_CHECKING:
    from vibes_eval.adapters.detect import Detection, Profile

__all__ = ["SGLangAdapter"]

IMAGE_PLACEHOLDER = "<image>"
_GREY = (122, 116, 104)  # the CLIP mean colour LLaVA pads with (the blank image)


class SGLangAdapter(OpenAIAdapter):
    """A model behind SGLang's native `/generate`, behind the Adapter interface."""

    loader = "sglang"

    @classmethod
    def check_spec(cls, spec: AdapterSpec, detection: Detection | None) -> None:
        """The server decides device and dtype; --template is honoured (this adapter renders the prompt)."""
        Adapter.check_spec(spec, detection)
        for flag, value in (("--device", spec.device), ("--dtype", spec.dtype)):
            if value:
                raise UsageError(f"{flag}: not available with --adapter sglang (the server decides it)")
        if not spec.base_url or not spec.model:
            raise UsageError("--adapter sglang needs --base-url URL and --model NAME")

    @classmethod
    def open(cls, spec: AdapterSpec, detection: Detection | None, profile: Profile) -> SGLangAdapter:
        return cls(spec.base_url, spec.model, profile, template=spec.template,
                   concurrency=DEFAULT_CONCURRENCY if spec.concurrency is None else spec.concurrency,
                   timeout=DEFAULT_TIMEOUT if spec.timeout is None else spec.timeout)

    def __init__(self, base_url: str, model: str, profile: Profile | None = None, *, template: str | None = None,
                 **kwargs: Any):
        """As OpenAIAdapter; `template`: a known template to render prompts with (default: the server's family's).

        Raises:
            UsageError: no template is known for the server's model and none was given (exit 2).
        """
        self._asked_template = template
        self._tokens: dict[str, list[int]] = {}
        self._tokens_lock = threading.Lock()
        self.model_info: dict | None = None
        super().__init__(base_url, model, profile, **kwargs)  # GET /v1/models, then _probe_scoring

    # -- what the server is, and how to render for it ----------------------------------------------
    def _model_info(self) -> dict | None:
        for path in ("/model_info", "/get_model_info"):  # the second is the older name (still served, deprecated)
            try:
                info = self._call_with_retries("GET", path, native=True)
            except RemoteError:
                continue
            if isinstance(info, dict):
                return redact_deep(info)
        return None

    def _settle_template(self) -> None:
        from vibes_eval.adapters.families import FAMILIES

        archs = (self.model_info or {}).get("architectures") or []
        family = next((f for f in FAMILIES.values() if archs and archs[0] in f.architectures), None)
        self.stop = list(family.stop_strings) if family else list(self.profile.stop_strings if self.profile else [])
        self.eos = family.stop_strings[0] if family else ""
        if self._asked_template:
            self.template_name, self.template_source = self._asked_template, "--template"
        elif family is not None:
            self.template_name = family.template or "vicuna_v1"
            self.template_source = f"the {family.name} family's (the server reports {archs[0]})"
        else:
            what = f"reports {', '.join(map(str, archs))[:200]}" if archs else "reports no architecture (GET /model_info)"
            raise UsageError(f"--adapter sglang: the server {what}, not a LLaVA family with a known template: "
                             f"pass --template NAME (the prompt is rendered here for SGLang's /generate)")

    def render(self, question: str, template: str | None = None) -> str:
        """The prompt text sent to `/generate`: the template in use, or (template fit) another template's cue after the image."""
        from vibes_eval.adapters.templates import render_template, splice_template

        own = render_template(self.template_name, question)
        return splice_template(own, IMAGE_PLACEHOLDER, template, question) if template else own

    def _tokenize(self, text: str, special: bool = True) -> list[int]:
        key = f"{int(special)}{text}"
        with self._tokens_lock:
            if key in self._tokens:
                return self._tokens[key]
        ids = native.parse_tokens(self._call_with_retries(
            "POST", "/tokenize", {**native.tokenize_payload(self.model, text), "add_special_tokens": special}, native=True))
        with self._tokens_lock:
            self._tokens[key] = ids
        return ids

    def _probe_scoring(self) -> tuple[bool, str]:
        """Model info and template, then one checked scoring request with a grey image: (offered?, why)."""
        from PIL import Image

        self.model_info = self._model_info()
        self._settle_template()
        try:
            placeholder = self._tokenize(IMAGE_PLACEHOLDER, special=False)
            if len(placeholder) != 1:
                return False, (f"not offered: {IMAGE_PLACEHOLDER} is {len(placeholder)} tokens in the server's tokenizer, "
                               f"not one: the image's offset cannot be checked")
            self.image_id = placeholder[0]
            _, image = self._score_one(_encode_png(Image.new("RGB", (64, 64), _GREY)), "?", "yes", None)
        except native.DriftError as e:
            return False, f"not trusted: SGLang's image-token offset drifted: {e}"
        except (RemoteError, ProtocolError) as e:
            return False, f"not offered: {e}"
        return True, (f"offered (SGLang /generate input_token_logprobs; the image's {image} positions checked at its "
                      f"placeholder on every row)")

    # -- the Adapter interface ------------------------------------------------------------------
    def _one(self, r: Request) -> Response:
        def error(msg: str, kind: ErrorKind = ErrorKind.REMOTE) -> Response:
            return Response(prompt_id=r.prompt_id, variant=r.variant, finish="error", error=msg, error_kind=kind)

        try:
            uri = self._image_uri(r.image, r.variant)
        except Exception as e:  # noqa: BLE001 - an unreadable image is this prompt's error, not the run's
            return error(f"{r.image}: cannot read image: {type(e).__name__}: {short(str(e).splitlines()[0] if str(e) else '', 200)}",
                         ErrorKind.IMAGE_UNREADABLE)
        try:
            data = self._call_with_retries("POST", "/generate", native.generate_payload(
                self.render(r.question, r.template), uri, r.max_new_tokens, self.stop), native=True)
            text, finish, n, why = native.parse_generation(data)
        except (RemoteError, ProtocolError) as e:
            return error(redact(f"{self.root}/generate: {e}"))
        if why:
            return error(redact(f"{self.root}/generate: {why}"))
        text = redact(text.strip())
        if len(text) > MAX_ANSWER_CHARS:
            text = text[:MAX_ANSWER_CHARS] + f" … [cut by vibes-eval: the answer was {len(text):,} characters]"
        return Response(prompt_id=r.prompt_id, variant=r.variant, text=text, new_tokens=n, finish=finish)

    def _score_one(self, uri: str, question: str, target: str, template: str | None) -> tuple[float, int]:
        prompt = self.render(question, template)
        full = prompt + " " + target.strip() + self.eos  # as the in-process scorer: the answer, then the end of turn
        ids, prefix = self._tokenize(full), self._tokenize(prompt)
        data = self._call_with_retries("POST", "/generate", native.scoring_payload(full, uri), native=True)
        return native.checked_answer_logprob(data, ids, self.image_id, len(ids) - len(prefix))

    def score(self, requests: list[Request], targets: list[str]) -> list[float | None]:
        """Mean log-probability per token of each target, from `/generate`'s checked prompt log-probabilities.

        Raises:
            NotImplementedError: scoring is not offered (check `supports_scoring` first).
            DriftError: some rows' image positions were not at the placeholder (the runner reports it).
            ProtocolError: some requests failed or came back malformed.
        """
        if not self.supports_scoring:
            raise NotImplementedError(f"the server gives no usable prompt log-probabilities: {self._scoring[1]}")
        rows = [i for i, t in enumerate(targets) if t and t.strip()]
        values: list[float | None] = [None] * len(requests)
        errors: list[tuple[bool, str]] = []

        def one(i: int) -> None:
            r = requests[i]
            try:
                values[i] = self._score_one(self._image_uri(r.image, r.variant), r.question, targets[i], r.template)[0]
            except (RemoteError, ProtocolError, OSError) as e:  # OSError: the image file cannot be read
                errors.append((isinstance(e, native.DriftError), f"{r.prompt_id}/{r.variant}: {e}"))

        pool = ThreadPoolExecutor(max_workers=max(1, min(self.concurrency, len(rows) or 1)), thread_name_prefix="vibes-sglang")
        try:
            list(pool.map(one, rows))
        except BaseException:  # Ctrl-C: cut the requests in flight, start nothing more
            self.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        drifted = [msg for d, msg in errors if d]
        if drifted:
            raise native.DriftError(f"SGLang's image-token offset drifted on {len(drifted)} of {len(rows)} rows: not scored; "
                                    f"first: {drifted[0]}")
        if errors:
            raise ProtocolError(f"{len(errors)} of {len(rows)} /generate scoring requests failed; first: {errors[0][1]}")
        return values

    def describe(self, sample_images: list[Path] | None = None) -> dict:
        """OpenAIAdapter's fingerprint, with the native API, the template used and SGLang's model info."""
        fp = super().describe(sample_images)
        fp.update({"loader": "sglang", "profile": self.profile.name if self.profile else "sglang", "api": "SGLang native /generate",
                   "template": self.template_name, "template_source": self.template_source, "model_info": self.model_info})
        return fp
