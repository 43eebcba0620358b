"""The Adapter interface: what the runner, `serve` and the benchmarks may ask of a loaded model.

An Adapter answers `Request`s (`generate`), scores reference answers teacher-forced (`score`)
and describes what was loaded (`describe`, the fingerprint). Its capabilities are explicit
class attributes, never probed with getattr:

- `supports_scoring`: `score` returns log-likelihoods (a chat-completions server cannot);
  without it the runner marks the likelihood probes skipped.
- `supports_templates`: a `Request.template` (another known conversation template) is honoured,
  and `--template` can change the one in use; without it the template sweep is skipped.
- `needs_checkpoint`: the adapter opens a local checkpoint folder (the openai loader does not:
  the server holds the model).
- `supports_prompt_logprobs`: a local model whose teacher-forced pass `serve` can expose as
  prompt log-probabilities (`encode` + `prompt_logits`, the HF loaders).

Capabilities are settled by the time `open` returns (a loader that must ask a server asks it
there): reading one never does I/O. `checkpoint` is the folder the adapter was opened from
(None: a server, or a model already in memory).

Adapters are built through `vibes_eval.adapters.opening.open_adapter(spec)` from an
`AdapterSpec` (what the user asked for) and a `Detection` (what the checkpoint folder is);
each loader class turns those into an instance in its `open` classmethod. To add a loader:
one module with a subclass of `Adapter`, one line in `registry.LOADERS`, one profile YAML
in `adapters/` naming it (docs/architecture.md).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:  # the records import pydantic; the interface itself stays import-light
    from vibes_eval.adapters.detect import Detection, Profile
    from vibes_eval.records import Request, Response

__all__ = ["Adapter", "AdapterSpec"]


@dataclass(frozen=True)
class AdapterSpec:
    """What to open and how: the checkpoint (or server) and every loader option the user gave.

    Fields a loader does not use must be left at their defaults (its `check_spec` says which
    are refused); loader-specific options of loaders added later go in `options`.
    """

    checkpoint: Path | None = None
    """The checkpoint folder; None for a loader that needs none (a server)."""
    adapter: str | None = None
    """A profile name or a profile YAML file; None: detected from config.json."""
    device: str | None = None
    dtype: str | None = None
    template: str | None = None
    """A known template name (vibes_eval.adapters.templates) to ask with instead of the checkpoint's."""
    batch_size: int | None = None
    prefix_cache: bool = True
    """Share image prefixes across requests (HF loaders; `serve` turns it off)."""
    base: Path | None = None
    """llava_repo: the LLM a stage-1 or LoRA output was trained from."""
    vision_tower: Path | None = None
    """llava_repo: a local CLIP vision tower folder."""
    trust_remote_code: bool = False
    quantize: str | None = None
    """hf: `4bit` or `8bit`: quantize the weights on load with bitsandbytes (a CUDA GPU only)."""
    """hf: run the folder's own code files (config.json auto_map), never downloaded; hashed into the fingerprint."""
    base_url: str | None = None
    """openai: the server URL."""
    model: str | None = None
    """openai: the model name the server serves."""
    concurrency: int | None = None
    timeout: float | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    """Options of loaders that have no field here (passed through untouched)."""

    @property
    def label(self) -> str:
        """How reports and messages name what is evaluated: the folder, or `model at URL`."""
        if self.checkpoint is not None:
            return str(self.checkpoint)
        from vibes_eval.safety import url_without_userinfo  # never user:password@ in a report

        return f"{self.model} at {url_without_userinfo(self.base_url or '')}"


class Adapter(ABC):
    """A loaded model behind one interface; see the module docstring for the capabilities."""

    loader: ClassVar[str] = ""
    """The registry name of this loader (`Profile.loader`)."""
    supports_scoring: bool = True
    """`score` returns teacher-forced log-likelihoods (a loader may settle it per instance, in `open`)."""
    supports_templates: bool = True
    """Requests may name another known template, and the one in use can be chosen."""
    scoring_note: str | None = None
    """Why `supports_scoring` is False, when the adapter knows (a server's answer): the skipped probes' reason."""
    needs_checkpoint: ClassVar[bool] = True
    """The loader opens a local checkpoint folder."""
    supports_prompt_logprobs: ClassVar[bool] = False
    """`encode(prompts, images)` and `prompt_logits(encoded)` give a teacher-forced pass (`serve`'s likelihoods)."""

    checkpoint: Path | None = None
    """The checkpoint folder this adapter was opened from; None for a server or an in-memory model."""

    profile: Profile | None = None
    """The adapter profile this instance was opened with."""
    template_name: str | None = None
    """The known template asked with; None: the checkpoint's own chat template (or the server's)."""
    device: str = "cpu"
    """Where the model runs: `cpu`, `cuda`, `cuda:1`, or `remote`."""

    @classmethod
    def check_spec(cls, spec: AdapterSpec, detection: Detection | None) -> None:
        """Raise UsageError for options this loader cannot honour (called before `open`)."""
        from vibes_eval.errors import UsageError

        if spec.trust_remote_code and cls.loader != "hf":
            raise UsageError(f"--trust-remote-code: only for transformers-native checkpoints; {spec.label} is {cls.loader}")
        if spec.quantize and cls.loader != "hf":
            raise UsageError(f"--quantize: only for transformers-native checkpoints; {spec.label} is {cls.loader}")
        peft = detection is not None and detection.peft is not None  # a PEFT adapter takes --base: the model it applies to
        if (spec.base is not None and not peft) or spec.vision_tower is not None:
            what = spec.checkpoint if spec.checkpoint is not None else "this adapter"
            profile = detection.profile.name if detection is not None else cls.loader
            raise UsageError(f"--base/--vision-tower: only for original LLaVA repo checkpoints (and --base for PEFT adapters); "
                             f"{what} is {profile}")

    @classmethod
    @abstractmethod
    def open(cls, spec: AdapterSpec, detection: Detection | None, profile: Profile) -> Adapter:
        """Build the adapter. Raises CheckpointError (exit 3) or UsageError (exit 2), one line each."""

    @classmethod
    def opening_message(cls, spec: AdapterSpec, profile: Profile) -> str:
        """What a spinner says while `open` runs."""
        return f"loading {spec.label} ({profile.name})"

    @property
    def name(self) -> str:
        """The model's short name (a server's model name, a checkpoint folder's name)."""
        return self.checkpoint.name if self.checkpoint else "model"

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[Response]:
        """Greedy answers, one Response per Request in order; a crash is an error Response, never empty text."""

    @abstractmethod
    def score(self, requests: list[Request], targets: list[str]) -> list[float | None]:
        """Mean log-likelihood per token of each target after its request; None where a target has no token."""

    @abstractmethod
    def describe(self, sample_images: list[Path] | None = None) -> dict:
        """The fingerprint: what was loaded and how (architecture, loader, template, dtype, weights, ...)."""

    def close(self) -> None:
        """Release what the adapter holds (threads, connections); the default holds nothing."""
