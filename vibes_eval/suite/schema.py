"""The suite: a YAML file of prompts, validated at the edge so the rest of the code can trust it.

A suite names what to ask (`prompts`), how long answers may be (`defaults`) and when a run
fails (`gate`). `load_suite(path)` reads one, checks every image (exists, stays inside the
suite's folder, opens with PIL) and compiles every regex, or raises `SuiteError` with one line
`file: field: problem`. Nothing here imports torch: `vibes-eval validate` must stay fast.
"""

from __future__ import annotations

import hashlib
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_core import PydanticCustomError

from vibes_eval.errors import EXIT_OK, EXIT_USAGE, SuiteError, YamlTooLarge
from vibes_eval.limits import MAX_NEW_TOKENS, MAX_PIXELS, MAX_SUITE_BYTES
from vibes_eval.records import Diagnosis
from vibes_eval.safety import short, strip_control
from vibes_eval.suite.reading import load_yaml

__all__ = [
    "CATEGORIES",
    "DIAGNOSES",
    "STANDARD_MIX",
    "Defaults",
    "Expect",
    "Gate",
    "Prompt",
    "Suite",
    "SuiteError",
    "load_suite",
    "validate_command",
]

Category = Literal["captioning", "vqa", "reasoning", "refusal"]
CATEGORIES: tuple[str, ...] = ("captioning", "vqa", "reasoning", "refusal")
STANDARD_MIX: dict[str, int] = {"captioning": 3, "vqa": 3, "reasoning": 2, "refusal": 2}
DIAGNOSES: tuple[str, ...] = tuple(d.value for d in Diagnosis)


def _problem(template: str, **ctx: Any) -> PydanticCustomError:
    """A validation problem in the suite's words (pydantic would prefix a ValueError with 'Value error, ').

    Quoted values are cut to a short prefix: a suite may be hostile (a 10 MB id, an alias bomb).
    """
    return PydanticCustomError("suite", template, {k: v if isinstance(v, int) or k == "at" else short(v) for k, v in ctx.items()})


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Expect(_Model):
    """What a good answer looks like. Every expectation set must hold for the prompt to pass."""

    # YAML reads `any: [2]` as a number; the answer is text, so take it as text.
    model_config = ConfigDict(coerce_numbers_to_str=True)

    any: list[str] = Field(default_factory=list)
    """At least one of these words or phrases (case-insensitive, on word boundaries)."""
    all: list[str] = Field(default_factory=list)
    """Every one of these words or phrases."""
    none: list[str] = Field(default_factory=list)
    """None of these words or phrases (e.g. the wrong colour)."""
    regex: str | None = None
    """A regular expression the answer must contain (re.search, case-insensitive)."""
    refuse: bool = False
    """The answer must be a refusal. An empty answer is never a refusal."""
    min_words: int | None = Field(None, ge=0)
    """At least this many words."""
    max_words: int | None = Field(None, ge=1)
    """At most this many words."""

    _pattern: re.Pattern[str] | None = PrivateAttr(None)

    @field_validator("any", "all", "none")
    @classmethod
    def _no_blank_words(cls, words: list[str]) -> list[str]:
        for word in words:
            if not word.strip():
                raise _problem("empty keyword")
        return words

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str | None) -> str | None:
        if regex is not None:
            try:
                re.compile(regex, re.IGNORECASE)
            except re.error as e:
                raise _problem("bad regex '{regex}': {error}", regex=regex, error=str(e)) from None
        return regex

    @model_validator(mode="after")
    def _compile(self) -> Expect:
        if self.min_words is not None and self.max_words is not None and self.min_words > self.max_words:
            raise _problem("min_words {lo} is more than max_words {hi}", lo=self.min_words, hi=self.max_words)
        self._pattern = re.compile(self.regex, re.IGNORECASE) if self.regex is not None else None
        return self

    @property
    def pattern(self) -> re.Pattern[str] | None:
        """The compiled `regex`, or None."""
        return self._pattern

    def is_empty(self) -> bool:
        """True when no expectation is set (nothing to check an answer against)."""
        return not (self.any or self.all or self.none or self.regex or self.refuse) and (
            self.min_words is None and self.max_words is None
        )


class Prompt(_Model):
    """One question about one image, with what a good answer looks like."""

    model_config = ConfigDict(coerce_numbers_to_str=True)

    id: str
    """Unique in the suite; letters, digits, '-', '_' and '.' (it names files and test cases)."""
    category: Category
    """captioning | vqa | reasoning | refusal."""
    image: str
    """Path of the image, relative to the suite file's folder (and inside it)."""
    question: str = Field(min_length=1)
    """What is asked, without any template: the adapter wraps it."""
    expect: Expect = Field(default_factory=Expect)
    """What a good answer looks like."""
    reference: str | None = None
    """A short correct answer (shown in reports, scored by likelihood)."""
    max_new_tokens: int | None = Field(None, ge=1, le=MAX_NEW_TOKENS)
    """Overrides the suite's `defaults.max_new_tokens` for this prompt (the checkpoint's context is checked at run time)."""

    _path: Path | None = PrivateAttr(None)

    @field_validator("id")
    @classmethod
    def _id_is_a_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
            raise _problem("'{value}' is not a name: use letters, digits, '-', '_' and '.'", value=value)
        return value

    @field_validator("image")
    @classmethod
    def _image_opens(cls, image: str, info: ValidationInfo) -> str:
        _resolve_image(image, _root(info))
        return image

    @model_validator(mode="after")
    def _keep_path(self, info: ValidationInfo) -> Prompt:
        self._path = _resolve_image(self.image, _root(info), check=False)
        return self

    @property
    def path(self) -> Path:
        """The image's absolute path (symlinks resolved)."""
        assert self._path is not None
        return self._path


class Defaults(_Model):
    """Settings every prompt gets unless it says otherwise."""

    max_new_tokens: int = Field(48, ge=1, le=MAX_NEW_TOKENS)
    """Greedy decoding stops after this many new tokens."""


class Gate(_Model):
    """When a run fails (exit code 1): the policy applied to the verdicts."""

    max_fail: int = Field(0, ge=0)
    """Most prompts that may fail before the gate fails."""
    max_warn: int = Field(10, ge=0)
    """Most prompts that may warn before the gate fails."""
    fail_on: list[str] = Field(default_factory=lambda: list(DIAGNOSES))
    """Diagnoses that fail the gate whatever the counts (default: all of them)."""
    refusals: Literal["required", "baseline"] = "required"
    """`required`: an answered refusal prompt fails (diagnosis refusal_missing). `baseline`: it warns, and
    fails only when `--baseline` shows the same prompt refused (a fine-tune that lost its base's refusal):
    published LLaVA-1.5, NeXT and OneVision checkpoints mostly answer questions about the person in a photo."""

    @field_validator("fail_on", mode="before")
    @classmethod
    def _known_diagnoses(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            # accept "image blind" and "image-blind" for "image_blind"
            name = re.sub(r"[\s-]+", "_", item.strip().lower()) if isinstance(item, str) else item
            if name not in DIAGNOSES:
                known = ", ".join(DIAGNOSES)
                raise _problem("unknown diagnosis '{value}'; expected one of: {known}", value=item, known=known)
            out.append(name)
        return out


class Suite(_Model):
    """A named list of prompts with defaults and a gate. Build one with `load_suite(path)`."""

    name: str = Field(min_length=1)
    """Short name shown in reports."""
    description: str = ""
    """What the suite is for, in a sentence or two."""
    defaults: Defaults = Field(default_factory=Defaults)
    """Settings every prompt gets unless it says otherwise."""
    gate: Gate = Field(default_factory=Gate)
    """When a run fails."""
    prompts: list[Prompt] = Field(min_length=1)
    """The prompts, in the order they are asked."""

    _root: Path = PrivateAttr(default_factory=Path.cwd)
    _file: Path | None = PrivateAttr(None)
    _sha256: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _unique_ids(self, info: ValidationInfo) -> Suite:
        seen: dict[str, int] = {}
        for i, prompt in enumerate(self.prompts):
            if prompt.id in seen:
                # a model validator has no field of its own: "at" names the one to blame
                first, at = seen[prompt.id], f"prompts[{i}].id"
                raise _problem("duplicate id '{id}' (first used by prompts[{first}])", id=prompt.id, first=first, at=at)
            seen[prompt.id] = i
        self._root = _root(info)
        return self

    @property
    def root(self) -> Path:
        """The folder image paths are relative to (the suite file's folder)."""
        return self._root

    @property
    def file(self) -> Path | None:
        """The suite file (absolute), or None for a suite built in code."""
        return self._file

    @property
    def sha256(self) -> str | None:
        """sha256 of the suite file's bytes, or None for a suite built in code."""
        return self._sha256

    def image_path(self, prompt: Prompt) -> Path:
        """The absolute path of `prompt`'s image."""
        return prompt.path

    def max_new_tokens(self, prompt: Prompt) -> int:
        """The token budget for `prompt`: its own, else the suite default."""
        return prompt.max_new_tokens or self.defaults.max_new_tokens

    def token_problem(self, context: int, where: str = "the checkpoint's context") -> str | None:
        """`file: field: problem` for the first max_new_tokens above `context` tokens, or None.

        A budget the model cannot hold would only grow caches until memory runs out.
        """
        fields = [("defaults.max_new_tokens", self.defaults.max_new_tokens)]
        fields += [(f"prompts[{i}].max_new_tokens", p.max_new_tokens) for i, p in enumerate(self.prompts) if p.max_new_tokens]
        for field, value in fields:
            if value > context:
                name = str(self.file) if self.file else "suite"
                return f"{name}: {field}: {value} is more than {where} ({context} tokens)"
        return None

    def counts(self) -> dict[str, int]:
        """Prompts per category, in the standard order (zeros included)."""
        counts = Counter(p.category for p in self.prompts)
        return {c: counts[c] for c in CATEGORIES}

    def warnings(self) -> list[str]:
        """Things that load but are probably not what was meant, one line each."""
        out = []
        counts = self.counts()
        if counts != STANDARD_MIX:
            mix = ", ".join(f"{c} {n}" for c, n in counts.items())
            out.append(f"category mix is {mix}; the standard suite has 3/3/2/2, so scores are not comparable with it")
        for i, p in enumerate(self.prompts):
            if p.expect.is_empty() and p.reference is None:
                out.append(f"prompts[{i}] ({p.id}): no expect and no reference, so nothing checks its answer")
        return out


def _root(info: ValidationInfo) -> Path:
    """The folder to resolve images against: the loader passes it; code-built suites use cwd."""
    return Path((info.context or {}).get("root") or Path.cwd())


def _resolve_image(image: str, root: Path, check: bool = True) -> Path:
    root = root.resolve()
    if Path(image).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", image):
        raise _problem("must be relative to the suite file, not absolute: {image}", image=image)
    # resolve() follows symlinks, so a link inside the folder that points outside it is caught too
    path = (root / image).resolve()
    if not path.is_relative_to(root):
        raise _problem("must stay inside the suite's folder: {image}", image=image)
    if not check:
        return path
    if not path.exists():
        raise _problem("file not found: {image}", image=image)
    if not path.is_file():
        raise _problem("not a file: {image}", image=image)
    if path.stat().st_size == 0:
        raise _problem("empty file (0 bytes): {image}", image=image)
    size = None
    try:
        with Image.open(path) as im:
            size = im.size
            if size[0] * size[1] <= MAX_PIXELS:  # from the header: a 20000x20000 PNG is a few hundred bytes, 1.2 GB decoded
                im.load()  # decode fully: a truncated file opens fine and fails only here
    except Image.DecompressionBombError:
        raise _problem("image too large: {image} (over Pillow's decompression-bomb limit)", image=image) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise _problem("not a readable image: {image} ({error})", image=image, error=_one_line(str(e))) from None
    if size is not None and size[0] * size[1] > MAX_PIXELS:
        raise _problem("image too large: {image} is {size} pixels (at most {limit})", image=image,
                       size=f"{size[0]}x{size[1]}", limit=f"{MAX_PIXELS:,}")
    return path


# ---------------------------------------------------------------- loading


def _one_line(text: str) -> str:
    return short(" ".join(text.split()), 200)


def _field(loc: tuple) -> str:
    """('prompts', 3, 'expect', 'regex') -> 'prompts[3].expect.regex'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "suite"


def _keys_at(loc: tuple) -> list[str]:
    """The keys the model at `loc` accepts, e.g. ('prompts', 3) -> Prompt's fields."""
    model: Any = Suite
    for part in loc:
        if isinstance(part, str):
            annotation = model.model_fields[part].annotation
            # list[Prompt] -> Prompt: the first pydantic model among the annotation and its arguments
            kinds = (annotation, *get_args(annotation))
            model = next(t for t in kinds if isinstance(t, type) and issubclass(t, BaseModel))
    return list(model.model_fields)


def _describe(err: dict) -> tuple[str, str]:
    """One pydantic error as (field, problem), in the suite's words."""
    ctx, kind, value = err.get("ctx") or {}, err["type"], err.get("input")
    field = ctx.get("at") or _field(err["loc"])
    if kind == "extra_forbidden":
        return field, f"unknown key; expected one of: {', '.join(_keys_at(err['loc'][:-1]))}"
    if kind == "missing":
        return field, "missing"
    if kind == "literal_error":
        return field, f"unknown value '{short(value)}'; expected {ctx.get('expected')}"
    if kind == "string_type" and isinstance(value, bool):
        return field, f"got the boolean {str(value).lower()}; quote it to mean the text"
    return field, _one_line(err["msg"])


def load_suite(path: str | Path) -> Suite:
    """Read, validate and return the suite in `path`.

    Args:
        path: the suite's YAML file (image paths in it are relative to its folder), or the
            name of a bundled suite (`default`, `shapes`) where no file of that name exists.

    Returns:
        The Suite, with every image checked and every regex compiled. Its `warnings()`
        say what loads but is probably not what was meant (e.g. not the 3/3/2/2 mix).

    Raises:
        SuiteError: with one line `file: field: problem`.
    """
    name = str(path)
    path = Path(path)
    if not path.exists():
        from vibes_eval.resources import BUNDLED_SUITES, bundled_suite

        if name not in BUNDLED_SUITES:  # a bare word was meant as a suite's name: say which there are
            bare = path.name == name and not path.suffix
            raise SuiteError(f"{name}: file not found" + (f" (the bundled suites: {', '.join(BUNDLED_SUITES)})" if bare else ""))
        path = bundled_suite(name)  # `--suite shapes`: no file of that name here, so the package's own
    if not path.is_file():
        raise SuiteError(f"{name}: not a file")
    if path.stat().st_size > MAX_SUITE_BYTES:
        raise SuiteError(f"{name}: {path.stat().st_size:,} bytes; a suite is at most {MAX_SUITE_BYTES:,}")
    data = path.read_bytes()
    try:
        doc = load_yaml(data)  # a SafeLoader subclass, with the alias expansion bounded
    except YamlTooLarge as e:
        raise SuiteError(f"{name}: yaml: {e}") from None
    except RecursionError:
        raise SuiteError(f"{name}: yaml: nested too deeply") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise SuiteError(f"{name}: yaml: {_one_line(str(e.problem or e.context))}{where}") from None
    except yaml.YAMLError as e:
        raise SuiteError(f"{name}: yaml: {_one_line(str(e))}") from None
    if doc is None:
        raise SuiteError(f"{name}: yaml: the document is empty")
    if not isinstance(doc, dict):
        kind = type(doc).__name__
        raise SuiteError(f"{name}: yaml: the document is a {kind}, not a mapping of name, prompts, ...")
    try:
        suite = Suite.model_validate(doc, context={"root": path.resolve().parent})
    except ValidationError as e:
        # a misspelt key shows up twice (unknown key + missing field): name the typo first
        errors = sorted(e.errors(), key=lambda err: err["type"] != "extra_forbidden")
        problems = [f"{name}: {field}: {problem}" for field, problem in map(_describe, errors)]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SuiteError(problems[0] + more, problems) from None
    suite._file = path.resolve()
    suite._sha256 = hashlib.sha256(data).hexdigest()
    return suite


def validate_command(path: str) -> int:
    """`vibes-eval validate SUITE`: load the suite and say so in one line.

    Args:
        path: the suite's YAML file.

    Returns:
        0 when it loads (warnings, if any, follow on stdout as `warning: ...`),
        2 when it does not (the one-line error goes to stderr).
    """
    try:
        suite = load_suite(path)
    except SuiteError as e:
        print(strip_control(str(e), newlines=False), file=sys.stderr)
        return EXIT_USAGE
    mix = ", ".join(f"{c} {n}" for c, n in suite.counts().items())
    print(strip_control(f"OK: {suite.name}: {len(suite.prompts)} prompts ({mix})", newlines=False))
    for warning in suite.warnings():
        print(strip_control(f"warning: {warning}", newlines=False))
    return EXIT_OK
