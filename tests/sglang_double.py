"""A test double of SGLang's native HTTP API over a local checkpoint (the toy), for the sglang adapter's tests.

What it copies from SGLang (sgl-project/sglang: `managers/io_struct.py` GenerateReqInput, the
scheduler's `_process_input_token_logprobs`, `models/llava.py` `pad_input_ids`, `http_server.py`):

- `POST /generate` takes `text` with the `<image>` placeholder and `image_data` (a `data:` URI), and
  `sampling_params` (`max_new_tokens`, `temperature`, `stop`); answers `{"text", "meta_info"}` with
  `finish_reason` `{"type": "stop"|"length", ...}`, `prompt_tokens` and `completion_tokens`;
- with `return_logprob`, `meta_info.input_token_logprobs` from `logprob_start_len` on: one
  `[logprob, token_id, text|null]` per position of the *expanded* prompt (the placeholder replaced by
  the image's feature positions, whose ids are pad values from the image's hash, `hash % 2**30`),
  the first entry's logprob null; `prompt_tokens` counts the expanded prompt; a
  `logprob_start_len` at or past it is refused (400);
- `POST /tokenize` (unexpanded ids), `GET /model_info` and `/get_model_info`, `/server_info`,
  `GET /v1/models` with `owned_by: "sglang"`.

The log-probabilities are the model's own (one forward pass of the processor's expanded prompt,
as `vibes-eval serve` computes them). `drift=k` reproduces the bug class the client must catch:
the image's positions are reported k tokens after its placeholder (the text tokens that follow the
placeholder come first), so the span at the end no longer lines up with what the client tokenized.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["SGLangDouble"]


class SGLangDouble:
    """`with SGLangDouble(adapter, model_name, drift=0) as url:` serves the loaded HF adapter on 127.0.0.1."""

    def __init__(self, adapter, model_name: str, *, drift: int = 0, architectures=("LlavaForConditionalGeneration",)):
        self.adapter, self.model_name, self.drift = adapter, model_name, drift
        self.architectures = list(architectures)
        self.lock = threading.Lock()
        self.requests: list[dict] = []

    # -- the model ---------------------------------------------------------------------------
    @property
    def tokenizer(self):
        return self.adapter.processor.tokenizer

    def image_token_id(self) -> int:
        return self.tokenizer.convert_tokens_to_ids(getattr(self.adapter.processor, "image_token", "<image>"))

    def _expanded(self, text: str, image):
        return self.adapter.encode([text], [image])  # the processor expands the placeholder, as SGLang's pad_input_ids

    def logprobs(self, text: str, image, pad: int) -> list[list]:
        """[[logprob|None, id, text], ...] over the expanded prompt, image positions carrying `pad`."""
        import torch

        enc = self._expanded(text, image)
        ids = enc["input_ids"][0]
        logits = self.adapter.prompt_logits(enc)[0, :-1].float()
        own = torch.log_softmax(logits, -1).gather(-1, ids[1:].unsqueeze(-1)).squeeze(-1).tolist()
        img = self.image_token_id()
        out = []
        for i, t in enumerate(ids.tolist()):
            lp = None if i == 0 else own[i - 1]
            out.append([lp, pad, None] if t == img else [lp, t, self.tokenizer.decode([t])])
        if self.drift:  # the image's positions reported `drift` tokens late: the text after the placeholder comes first
            first = next(i for i, e in enumerate(out) if e[1] == pad)
            last = max(i for i, e in enumerate(out) if e[1] == pad) + 1
            moved = out[last : last + self.drift]
            out = out[:first] + moved + out[first:last] + out[last + self.drift :]
        return out

    def generate(self, text: str, image, max_new_tokens: int, stop: list[str]) -> tuple[str, dict, int, int]:
        import torch

        enc = self._expanded(text, image)
        tok = self.tokenizer
        with torch.inference_mode():
            gen = self.adapter.model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                              pad_token_id=tok.pad_token_id)
        new = gen[0, enc["input_ids"].shape[1] :].tolist()
        eos = tok.eos_token_id
        cut = new.index(eos) if eos in new else None
        body = new if cut is None else new[:cut]
        out = tok.decode(body, skip_special_tokens=True)
        for s in stop:
            if s in out:
                return out[: out.index(s)], {"type": "stop", "matched": s}, enc["input_ids"].shape[1], len(body)
        if cut is not None:
            return out, {"type": "stop", "matched": eos}, enc["input_ids"].shape[1], len(body)
        return out, {"type": "length", "length": len(new)}, enc["input_ids"].shape[1], len(new)

    # -- HTTP ----------------------------------------------------------------------------------
    def __enter__(self) -> str:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                info = {"model_path": double.model_name, "tokenizer_path": double.model_name, "is_generation": True,
                        "preferred_sampling_params": None, "weight_version": "default", "has_image_understanding": True,
                        "has_audio_understanding": False, "model_type": "llava", "architectures": double.architectures}
                routes = {
                    "/v1/models": {"object": "list", "data": [{"id": double.model_name, "object": "model", "created": 1,
                                                               "owned_by": "sglang", "root": double.model_name,
                                                               "max_model_len": 4096}]},
                    "/model_info": info, "/get_model_info": info,
                    "/server_info": {"version": "0.5.0-double", "chat_template": None, "model_path": double.model_name},
                }
                if self.path in routes:
                    self._send(200, routes[self.path])
                else:
                    self._send(404, {"detail": "Not Found"})

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                double.requests.append({"path": self.path, **body})
                try:
                    if self.path == "/tokenize":
                        ids = double.tokenizer(body["prompt"], add_special_tokens=body.get("add_special_tokens", True))["input_ids"]
                        self._send(200, {"tokens": ids, "count": len(ids), "max_model_len": 4096})
                    elif self.path == "/generate":
                        self._send(*double.answer(body))
                    else:
                        self._send(404, {"detail": "Not Found"})
                except (KeyError, ValueError) as e:
                    self._send(400, {"error": {"message": str(e)}})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    def answer(self, body: dict) -> tuple[int, dict]:
        from PIL import Image

        raw = body["image_data"]
        data = base64.b64decode(raw.split(",", 1)[1] if raw.startswith("data:") else raw)
        image = Image.open(io.BytesIO(data)).convert("RGB")
        pad = int.from_bytes(hashlib.sha256(data).digest()[:8], "little") % (1 << 30)
        params = body.get("sampling_params") or {}
        with self.lock:
            if body.get("return_logprob"):
                entries = self.logprobs(body["text"], image, pad)
                start = int(body.get("logprob_start_len", -1))
                start = len(entries) - 1 if start == -1 else start
                if start >= len(entries):
                    return 400, {"error": {"message": f"logprob_start_len ({start}) is higher than the number of input "
                                                      f"tokens ({len(entries)})."}}
                part = entries[start:]
                part[0] = [None, part[0][1], part[0][2]]
                meta = {"id": "double", "finish_reason": {"type": "length", "length": 1}, "prompt_tokens": len(entries),
                        "completion_tokens": 1, "cached_tokens": 0, "input_token_logprobs": part, "output_token_logprobs": []}
                if not body.get("return_text_in_logprobs"):
                    meta["input_token_logprobs"] = [[e[0], e[1], None] for e in part]
                return 200, {"text": "", "meta_info": meta}
            text, reason, prompt_tokens, n = self.generate(body["text"], image, int(params.get("max_new_tokens", 128)),
                                                           list(params.get("stop") or []))
        return 200, {"text": text, "meta_info": {"id": "double", "finish_reason": reason, "prompt_tokens": prompt_tokens,
                                                 "completion_tokens": n, "cached_tokens": 0}}
