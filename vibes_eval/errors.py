"""The one error model: exit codes, the exception classes, the one-line message, the exit-code mapping.

Exit codes: 0 passed, 1 the gate failed, 2 bad usage or suite, 3 the checkpoint could not be
evaluated. Every error vibes-eval raises for a user to read is a `VibesError`; its `str()` is
one line naming the file and field (`path: field: problem`), and `exit_code_for` is the one
place that turns an exception into an exit code:

    VibesError                 (base; exit 3 unless a subclass says otherwise)
    ├── UsageError             bad flags or arguments: exit 2 (also a ValueError)
    │   ├── SuiteError         a suite that cannot be used
    │   ├── BaselineError      an unusable --baseline
    │   ├── BudgetError        a checkpoint or argument `budget` cannot count tokens for
    │   ├── CompareError       a report `compare` cannot read
    │   └── VibesUsageError    the `vibes` pytest fixture was given options `run` refuses
    ├── CheckpointError        the checkpoint cannot be evaluated: exit 3
    │   └── EvaluationFailed   ... and `.scorecard` is the report that says why
    └── RemoteError            one failed HTTP exchange with a server: exit 3

Every user-facing exception class lives here, so one `except VibesError` and `exit_code_for`
cover them all. Two input-bound signals are plain ValueErrors caught where the input is read
(ImageTooLarge, YamlTooLarge). This module imports nothing from the package at run time:
every other module may import it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import Enum
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from vibes_eval.records import Scorecard

__all__ = [
    "AnswerFileError",
    "EXIT_EVAL",
    "EXIT_GATE",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "BaselineError",
    "BudgetError",
    "CheckpointError",
    "CompareError",
    "ErrorKind",
    "EvaluationFailed",
    "ImageTokenMismatch",
    "ImageTooLarge",
    "RemoteError",
    "SuiteError",
    "Terminated",
    "UsageError",
    "VibesError",
    "VibesUsageError",
    "YamlTooLarge",
    "command",
    "error_kind",
    "exit_code_for",
    "one_line",
    "report",
]

EXIT_OK = 0
"""Every gate passed."""
EXIT_GATE = 1
"""The suite's gate failed (a diagnosis in fail_on, or too many failing / warning prompts)."""
EXIT_USAGE = 2
"""Bad usage or a bad suite: nothing was evaluated."""
EXIT_EVAL = 3
"""The checkpoint could not be evaluated (a scorecard saying so is still written)."""
EXIT_INTERRUPTED = 130
"""Ctrl-C (128 + SIGINT), as shells report it."""
EXIT_TERMINATED = 143
"""SIGTERM (128 + 15)."""


def one_line(e: BaseException, *, with_type: bool = True) -> str:
    """`Type: first line of the message` (or just the first line): how an error is quoted in one line.

    An exception with an empty message gives its type name alone; a message that starts with
    blank lines gives its first non-blank line.
    """
    text = str(e).strip()
    first = text.splitlines()[0] if text else ""
    if not with_type:
        return first or type(e).__name__
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


class VibesError(Exception):
    """An error a person can act on: `str()` is one line naming the file and field."""

    exit_code: int = EXIT_EVAL


class UsageError(VibesError, ValueError):
    """Bad input from the user (a flag, an argument, a profile name): exit code 2."""

    exit_code = EXIT_USAGE


class SuiteError(UsageError):
    """A suite that cannot be used. `str()` is one line: `file: field: problem`."""

    def __init__(self, message: str, problems: list[str] | None = None):
        super().__init__(message)
        self.problems = problems or [message]
        """Every problem found, one line each (the message names the first)."""


class CheckpointError(VibesError):
    """The checkpoint cannot be evaluated: one line naming the file and field (exit code 3)."""

    exit_code = EXIT_EVAL


class RemoteError(VibesError):
    """One failed HTTP exchange, worded `HTTP 404 from URL: message` (or `cannot connect to URL: why`)."""

    exit_code = EXIT_EVAL

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry: bool = False,
        retry_after: float | None = None,
        code: str | None = None,
        timed_out: bool = False,
    ):
        super().__init__(message)
        self.timed_out = timed_out
        """The exchange ran out of its deadline (adapters/openai/model.py stops sending after several in a row)."""
        self.status = status
        self.retry = retry
        self.retry_after = retry_after
        self.code = code
        """The server's error code (`error.code` of an OpenAI-style body), if it gave one."""


class CompareError(UsageError):
    """A report we cannot compare; the message is one line naming the file."""


class BudgetError(UsageError):
    """A checkpoint or an argument we cannot count tokens for; the message is one line naming file and field."""


class BaselineError(UsageError):
    """An unusable --baseline: one line naming the file; exit code 2."""


class AnswerFileError(UsageError):
    """An answer file `check-answers` cannot read: one line naming the file, the line or row, the field; exit 2."""


class ImageTooLarge(ValueError):
    """An image whose header declares more pixels than MAX_PIXELS (nothing was decoded)."""


class YamlTooLarge(ValueError):
    """The document expands past MAX_YAML_NODES values, or an alias refers to itself."""


class VibesUsageError(UsageError):
    """`vibes.run` was given options `vibes-eval run` refuses (exit code 2)."""


class EvaluationFailed(CheckpointError):
    """The checkpoint could not be evaluated (exit 3); `.scorecard` says why and holds what was computed."""

    def __init__(self, scorecard: Scorecard):
        super().__init__(scorecard.verdict.summary[0])
        self.scorecard = scorecard


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the program is so that `finally` blocks and atomic writes clean up (exit 143)."""


class ErrorKind(str, Enum):
    """Why a generation crashed, as a record field (`Response.error_kind`, `PromptResult.error_kind`).

    Classified once, where the exception is caught (`error_kind(e)`); the verdict reads the kind,
    never the message.
    """

    IMAGE_TOKEN_MISMATCH = "image_token_mismatch"
    """The model and the processor disagree on the number of image tokens."""
    OUT_OF_MEMORY = "out_of_memory"
    IMAGE_UNREADABLE = "image_unreadable"
    """The request's image could not be opened."""
    UNSUPPORTED = "unsupported"
    """The adapter cannot honour the request (a template a server cannot switch to)."""
    REMOTE = "remote"
    """The server failed the request (HTTP error, timeout) and said nothing more specific."""
    CRASH = "crash"
    """Anything else the model raised."""

    def __str__(self) -> str:
        return self.value


class ImageTokenMismatch(ValueError):
    """Raised by vibes-eval's own code when image features and image tokens do not match."""


# transformers' LLaVA classes raise a plain ValueError with this text; recognised here, at the
# one place an exception becomes a kind, so nothing downstream reads messages
_TRANSFORMERS_TOKEN_MISMATCH = "image features and image tokens do not match"


def error_kind(e: BaseException) -> ErrorKind:
    """The kind of a crash, from the exception a model or a loader raised."""
    if isinstance(e, ImageTokenMismatch) or (
        isinstance(e, ValueError) and _TRANSFORMERS_TOKEN_MISMATCH in str(e).lower()
    ):
        return ErrorKind.IMAGE_TOKEN_MISMATCH
    if type(e).__name__ == "OutOfMemoryError" or isinstance(
        e, MemoryError
    ):  # torch.OutOfMemoryError without importing torch
        return ErrorKind.OUT_OF_MEMORY
    if isinstance(e, RemoteError):
        return ErrorKind.REMOTE
    return ErrorKind.CRASH


def exit_code_for(e: BaseException) -> int:
    """The exit code for an exception that ends a command: the one mapping from errors to exit codes.

    A VibesError carries its own; Ctrl-C is 130; anything else is an internal failure while
    evaluating, which is exit 3 (the checkpoint could not be evaluated).
    """
    if isinstance(e, VibesError):
        return e.exit_code
    if isinstance(e, Terminated):
        return EXIT_TERMINATED
    if isinstance(e, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    return EXIT_EVAL


def report(e: BaseException) -> int:
    """Print `vibes-eval: <one line>` to stderr (redacted, no control characters); return the exit code."""
    from vibes_eval.safety import say

    text = str(e) if isinstance(e, VibesError) else one_line(e)
    say(text.splitlines()[0] if text else type(e).__name__)
    return exit_code_for(e)


_F = TypeVar("_F", bound=Callable[..., int])


def command(fn: _F) -> _F:
    """Decorate a `*_command(args) -> int`: a VibesError it raises is reported in one line and becomes its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except VibesError as e:
            return report(e)

    return wrapper  # type: ignore[return-value]
