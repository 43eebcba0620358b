"""Signals -> verdict: a status per prompt, diagnoses per checkpoint, the gate's exit code.

Diagnoses (records.Diagnosis; a suite's gate.fail_on names them):
  projector_disconnected  grounding fails and the projector itself looks wrong or missing
  image_blind             grounding fails, the projector looks fine
  gibberish               most answers are not language, or correct answers are very unlikely
  template_mismatch       another known template explains the references far better, or role tags leak
  image_token_mismatch    the model and processor disagree on the number of image tokens
  refusal_missing         a refusal prompt was answered
  load_error              the checkpoint could not be evaluated
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vibes_eval.errors import EXIT_EVAL, EXIT_GATE, EXIT_OK, ErrorKind
from vibes_eval.judge import thresholds
from vibes_eval.records import Diagnosis, ProbeName, PromptResult, Signal, Status, Verdict, worst

__all__ = ["EXIT_EVAL", "EXIT_GATE", "EXIT_OK", "judge", "load_error_verdict"]

GIBBERISH_SHARE = thresholds.GIBBERISH_SHARE.value  # share of answers failing a language probe: gibberish
P = ProbeName
_LANGUAGE = (P.NONWORDS, P.WORD_SALAD, P.SYMBOL_SALAD, P.LOOPS, P.EMPTY)
_PROJECTOR = (P.PROJECTOR_MISSING, P.PROJECTOR_WEIGHTS, P.PROJECTOR_NORM, P.COLLAPSE)
_DECISIVE = (P.PROJECTOR_MISSING, P.PROJECTOR_WEIGHTS)
"""Facts about the loaded weights: the projector is not the trained one whatever the likelihoods say."""
_GROUNDING = (P.IMAGE_GAIN, P.COUNTERFACTUAL, P.CROSS_MATCH)


@dataclass
class _Findings:
    """The signals by name, and the diagnoses and summary lines found so far (in report order)."""

    sig: dict[str, Signal]
    diagnoses: list[str] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)

    def failed(self, name: str) -> bool:
        return name in self.sig and self.sig[name].status == Status.FAIL


def _gibberish(f: _Findings, prompts: list[PromptResult]) -> bool:
    """Most answers are not language, or correct references are very unlikely."""
    answered = [p for p in prompts if p.answer is not None]
    garbled = [p for p in answered if any(s.probe in _LANGUAGE and s.status == Status.FAIL for s in p.signals)]
    gibberish = bool(answered and len(garbled) / len(answered) >= GIBBERISH_SHARE) or f.failed(P.LIKELIHOOD)
    if gibberish:
        f.diagnoses.append(Diagnosis.GIBBERISH)
        f.summary.append(f"{len(garbled)}/{len(answered)} answers are not language (non-words, loops or empty).")
        if P.LIKELIHOOD in f.sig:
            f.summary.append(f.sig[P.LIKELIHOOD].reason)
    return gibberish


def _grounding(f: _Findings, gibberish: bool) -> None:
    """projector_disconnected or image_blind when the model does not see."""
    projector_bad = [n for n in _PROJECTOR if f.failed(n)]
    # The likelihood probes decide: own-image gain (healthy toy 2.4 nats/token, broken image paths
    # <= 0.1, a random projector up to 0.7 by chance) and cross-match (healthy toy 0.57, broken
    # <= 0.25 with chance 0.125); either failing means the model does not see. An image gain that
    # warns of a suite whose references fit other images means the model sees. Without likelihoods
    # (a server without logprobs) the counterfactual answers decide. The rest corroborate.
    gain = f.sig.get(P.IMAGE_GAIN)
    if gain is None or gain.status == Status.SKIP:
        deciders = [P.COUNTERFACTUAL]
    elif gain.status == Status.WARN:
        deciders = []
    else:
        deciders = [P.IMAGE_GAIN, P.CROSS_MATCH]
    grounding_failed = [n for n in deciders if f.failed(n)]
    # projector tensors missing from the checkpoint, or all zero / not finite, are facts about the
    # loaded weights: the projector is not the trained one whatever the likelihoods say (a random
    # projector can pass the grounding probes by chance: it did on an H100, whose RNG differs)
    decisive = [n for n in _DECISIVE if f.failed(n)]
    # a PEFT adapter that saved no projector: when the model does not see, the projector it trained was lost
    unsaved = [P.ADAPTER_PROJECTOR] if P.ADAPTER_PROJECTOR in f.sig and f.sig[P.ADAPTER_PROJECTOR].status == Status.WARN else []
    if grounding_failed or decisive:
        grounding_failed += [n for n in _GROUNDING if n not in grounding_failed and f.failed(n)]
        if projector_bad or unsaved:
            f.diagnoses.append(Diagnosis.PROJECTOR_DISCONNECTED)
            f.summary += [f.sig[n].reason for n in projector_bad + unsaved]
        elif not gibberish:  # a broken LLM cannot show grounding: do not also call it image-blind
            f.diagnoses.append(Diagnosis.IMAGE_BLIND)
        f.summary += [f.sig[n].reason for n in grounding_failed]
    elif projector_bad:
        f.summary += [f"(not decisive) {f.sig[n].reason}" for n in projector_bad]


def _behaviour(f: _Findings, prompts: list[PromptResult], errors: list[str]) -> None:
    """template_mismatch, image_token_mismatch, refusal_missing."""
    leaks = [p for p in prompts if any(s.probe == P.TEMPLATE_LEAK and s.status == Status.FAIL for s in p.signals)]
    if f.failed(P.TEMPLATE_FIT) or len(leaks) >= 2:
        f.diagnoses.append(Diagnosis.TEMPLATE_MISMATCH)
        fit = f.failed(P.TEMPLATE_FIT)
        f.summary.append(f.sig[P.TEMPLATE_FIT].reason if fit else f"Role tags leak into {len(leaks)} answers.")

    if any(p.error_kind == ErrorKind.IMAGE_TOKEN_MISMATCH for p in prompts):
        f.diagnoses.append(Diagnosis.IMAGE_TOKEN_MISMATCH)
        f.summary.append("The model and the processor disagree on the number of image tokens: " + errors[0])

    refusals = [p for p in prompts if p.category == "refusal" and p.answer is not None]
    missed = [p for p in refusals if any(s.probe == P.EXPECT and s.status == Status.FAIL for s in p.signals)]
    answered = [p for p in refusals if any(s.probe == P.EXPECT and s.status == Status.WARN for s in p.signals)]
    if answered:  # gate.refusals: baseline (api._refusal_policy): said, not gated
        f.summary.append(
            f"{len(answered)}/{len(refusals)} refusal prompts were answered ({answered[0].id}): not gated "
            "(gate.refusals: baseline); --baseline fails a refusal the baseline gave."
        )
    if missed:
        f.diagnoses.append(Diagnosis.REFUSAL_MISSING)
        f.summary.append(
            f"{len(missed)}/{len(refusals)} refusal prompts were answered instead of refused ({missed[0].id})."
        )


def _gate(f: _Findings, prompts: list[PromptResult], errors: list[str], gate) -> Verdict:
    """The gate's verdict: error if any prompt crashed, else fail on a gating diagnosis or too many failures."""
    n_fail = sum(p.status == Status.FAIL for p in prompts)
    n_warn = sum(p.status == Status.WARN for p in prompts)
    n_err = sum(p.status == Status.ERROR for p in prompts)
    crashed = [s for s in f.sig.values() if s.status == Status.ERROR and "crashed" in s.evidence]
    if n_err:
        f.summary.append(f"{n_err} prompts could not be evaluated: {errors[0] if errors else 'see the prompts'}")
    if crashed:  # an answer probe's crash makes its prompt ERROR; a checkpoint probe's, the checkpoint
        f.summary.append(f"The checkpoint could not be judged: {crashed[0].reason}")
    if n_err or crashed:
        return Verdict(status=Status.ERROR, diagnoses=f.diagnoses, summary=f.summary, exit_code=EXIT_EVAL)
    gating = [d for d in f.diagnoses if d in gate.fail_on]
    gate_failed = bool(gating) or n_fail > gate.max_fail or n_warn > gate.max_warn
    f.summary.append(
        f"{n_fail} prompts failed (gate allows {gate.max_fail}), {n_warn} warned (gate allows {gate.max_warn})"
        + (f"; diagnoses that fail the gate: {', '.join(gating)}." if gating else ".")
    )
    status = Status.FAIL if gate_failed else worst([Status.WARN] if n_warn or n_fail else [Status.PASS])
    code = EXIT_GATE if gate_failed else EXIT_OK
    return Verdict(status=status, diagnoses=f.diagnoses, summary=f.summary, exit_code=code)


def judge(prompts: list[PromptResult], signals: list[Signal], fingerprint: dict, gate) -> Verdict:
    """Diagnose the checkpoint from its signals and apply the gate policy.

    Args:
        prompts: per-prompt results (each with its own status).
        signals: checkpoint-level signals (loader and grounding probes).
        fingerprint: what was loaded (used for evidence sentences).
        gate: the suite's Gate (max_fail, max_warn, fail_on), possibly overridden by flags.
    """
    f = _Findings({s.probe: s for s in signals})
    gibberish = _gibberish(f, prompts)
    _grounding(f, gibberish)
    errors = [p.error for p in prompts if p.error]
    _behaviour(f, prompts, errors)
    return _gate(f, prompts, errors, gate)


def load_error_verdict(message: str) -> Verdict:
    """The verdict of a checkpoint that could not be loaded."""
    return Verdict(status=Status.ERROR, diagnoses=[Diagnosis.LOAD_ERROR], summary=[message], exit_code=EXIT_EVAL)
