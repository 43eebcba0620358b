"""Output hygiene shared by every writer: secrets redacted, control characters stripped, bidi isolated.

- `register_secret(value)` / `redact(text)`: an API key or URL password, once registered, is
  replaced by `***` wherever it shows up (also percent-encoded or base64-encoded), and so are
  `user:password@` in URLs and `Bearer <token>` / `Authorization: ...` whatever token a server
  echoes. Every message, report and log line that can carry server or user text goes through it.
- `strip_control(text)`: terminal escape sequences (CSI, OSC, ...) removed whole, other C0/C1
  control characters and bidi controls dropped; newlines and tabs kept only when asked.
- `bidi_isolate(text)`: text holding bidi controls wrapped in FSI ... PDI (unmatched PDIs
  dropped), so an unclosed RIGHT-TO-LEFT OVERRIDE cannot reverse what follows it.
- `short(value)`: a value quoted in an error message, at most a short prefix of it.
- `say(message)`: one line `vibes-eval: ...` on stderr, redacted and stripped.

Nothing here imports more than the standard library.
"""

from __future__ import annotations

import base64
import re
import sys
import threading
import urllib.parse

__all__ = ["REDACTED", "bidi_isolate", "redact", "register_secret", "say", "short", "strip_control", "url_without_userinfo"]

REDACTED = "***"
MIN_SECRET = 4  # shorter "secrets" would redact ordinary words; nobody's API key is 3 characters

_secrets: set[str] = set()
_lock = threading.Lock()
_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@?#]+@")
_BEARER = re.compile(r"(?i)\b(bearer)(\s+|%20|\+)[A-Za-z0-9._~+/=:-]{6,}")
_AUTH_HEADER = re.compile(r"(?i)\b(authorization|x-api-key|api-key|proxy-authorization)(\"?\s*[:=]\s*\"?)[^\s\"',}]+(?:[ \t]+[^\s\"',}]+)?")
# terminal sequences removed whole: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ST), DCS/PM/APC/SOS (... ST), two-char ESC x
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|\x1b[ -~]?"
)
_BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f" + _BIDI + "]")
_CONTROL_NO_NL = re.compile("[\x00-\x1f\x7f-\x9f" + _BIDI + "]")
_BIDI_ANY = re.compile("[" + _BIDI + "]")


def register_secret(value: str | None) -> None:
    """Remember `value` (an API key, a URL password) so `redact` hides it from now on."""
    if not value or len(value) < MIN_SECRET:
        return
    forms = {value, urllib.parse.quote(value, safe=""), urllib.parse.quote_plus(value)}
    raw = value.encode("utf-8", "replace")
    forms.add(base64.b64encode(raw).decode("ascii").rstrip("="))
    with _lock:
        _secrets.update(f for f in forms if len(f) >= MIN_SECRET)


def url_without_userinfo(url: str) -> str:
    """`http://user:pw@host/x` -> `http://host/x` (what may be shown or recorded of a URL)."""
    return _USERINFO.sub(r"\1", url)


def redact(text):
    """`text` with every registered secret, URL userinfo and bearer/authorization token replaced by ***.

    Non-strings are returned as they are (so it can be mapped over mixed values).
    """
    if not isinstance(text, str) or not text:
        return text
    with _lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    for s in secrets:
        if s in text:
            text = text.replace(s, REDACTED)
    text = _USERINFO.sub(r"\1" + REDACTED + "@", text)
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)
    return _AUTH_HEADER.sub(lambda m: m.group(1) + m.group(2) + REDACTED, text)


def redact_deep(value):
    """`redact` applied to every string inside dicts, lists and tuples (keys included)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {redact_deep(k): redact_deep(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_deep(v) for v in value)
    return value


def strip_control(text, *, newlines: bool = True):
    """`text` safe for a terminal: escape sequences removed whole, control and bidi characters dropped.

    Args:
        text: any string (non-strings are returned unchanged).
        newlines: keep `\\n` and `\\t` (False: they become spaces, for one-line output).
    """
    if not isinstance(text, str):
        return text
    text = _ESCAPES.sub("", text)
    if not newlines:
        text = text.replace("\n", " ").replace("\t", " ").replace("\r", " ")
        return _CONTROL_NO_NL.sub("", text)
    return _CONTROL.sub("", text)


def bidi_isolate(text):
    """Text holding bidi controls, wrapped in FSI ... PDI so none of them reaches past its end."""
    if not isinstance(text, str) or not _BIDI_ANY.search(text):
        return text
    out, depth = [], 0
    for ch in text:
        if ch in "\u2066\u2067\u2068":
            depth += 1
        elif ch == "\u2069":
            if depth == 0:
                continue  # a PDI that would close our own isolate early
            depth -= 1
        out.append(ch)
    return "\u2068" + "".join(out) + "\u2069" * (depth + 1)


def short(value, limit: int = 60) -> str:
    """`value` as text for an error message: one line, control characters dropped, at most `limit` characters."""
    text = value if isinstance(value, str) else repr(value) if not isinstance(value, (dict, list, tuple)) else _shape(value)
    text = strip_control(text[: limit * 4], newlines=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _shape(value) -> str:
    # never format a container (a YAML alias bomb expands to billions of items): name it
    n = len(value)
    return f"<a {type(value).__name__} of {n} item{'s' if n != 1 else ''}>"


def say(message: str, file=None) -> None:
    """Print `vibes-eval: <message>` as one line on stderr, redacted and stripped of control characters."""
    print("vibes-eval: " + strip_control(redact(str(message)), newlines=False), file=file or sys.stderr)
