"""Signals -> verdict: a status per prompt, diagnoses per checkpoint, the gate's exit code.

Diagnoses (a fixed list, suite.DIAGNOSES):
  projector_disconnected  grounding fails and the projector itself looks wrong or missing
  image_blind             grounding fails, the projector looks fine
  gibberish               most answers are not language, or correct answers are very unlikely
  template_mismatch       another known template explains the references far better, or role tags leak
  image_token_mismatch    the model and processor disagree on the number of image tokens
  refusal_missing         a refusal prompt was answered
  load_error              the checkpoint could not be evaluated
"""

from __future__ import annotations

from vibes_eval.records import PromptResult, Signal, Status, Verdict, worst

__all__ = ["EXIT_EVAL", "EXIT_GATE", "EXIT_OK", "judge", "load_error_verdict"]

EXIT_OK, EXIT_GATE, EXIT_EVAL = 0, 1, 3
GIBBERISH_SHARE = 0.5  # share of answers failing a language probe that makes the whole checkpoint gibberish
_LANGUAGE = ("nonwords", "loops", "empty")
_PROJECTOR = ("projector_missing", "projector_weights", "projector_norm", "collapse")
_GROUNDING = ("image_gain", "counterfactual", "cross_match")


def _by_name(signals: list[Signal]) -> dict[str, Signal]:
    return {s.probe: s for s in signals}


def judge(prompts: list[PromptResult], signals: list[Signal], fingerprint: dict, gate) -> Verdict:
    """Diagnose the checkpoint from its signals and apply the gate policy.

    Args:
        prompts: per-prompt results (each with its own status).
        signals: checkpoint-level signals (loader and grounding probes).
        fingerprint: what was loaded (used for evidence sentences).
        gate: the suite's Gate (max_fail, max_warn, fail_on), possibly overridden by flags.
    """
    sig = _by_name(signals)
    failed = lambda name: name in sig and sig[name].status == Status.FAIL  # noqa: E731
    diagnoses: list[str] = []
    summary: list[str] = []

    answered = [p for p in prompts if p.answer is not None]
    garbled = [p for p in answered if any(s.probe in _LANGUAGE and s.status == Status.FAIL for s in p.signals)]
    gibberish = (answered and len(garbled) / len(answered) >= GIBBERISH_SHARE) or failed("likelihood")
    if gibberish:
        diagnoses.append("gibberish")
        summary.append(f"{len(garbled)}/{len(answered)} answers are not language (non-words, loops or empty).")
        if "likelihood" in sig:
            summary.append(sig["likelihood"].reason)

    projector_bad = [n for n in _PROJECTOR if failed(n)]
    # The likelihood probes decide: own-image gain (healthy toy 2.4 nats/token, broken image paths
    # <= 0.1, a random projector up to 0.7 by chance) and cross-match (healthy toy 0.57, broken
    # <= 0.25 with chance 0.125); either failing means the model does not see. An image gain that
    # warns of a suite whose references fit other images means the model sees. Without likelihoods
    # (a server without logprobs) the counterfactual answers decide. The rest corroborate.
    gain = sig.get("image_gain")
    if gain is None or gain.status == Status.SKIP:
        deciders = ["counterfactual"]
    elif gain.status == Status.WARN:
        deciders = []
    else:
        deciders = ["image_gain", "cross_match"]
    grounding_failed = [n for n in deciders if failed(n)]
    # projector tensors missing from the checkpoint, or all zero / not finite, are facts about the
    # loaded weights: the projector is not the trained one whatever the likelihoods say (a random
    # projector can pass the grounding probes by chance: it did on an H100, whose RNG differs)
    decisive = [n for n in ("projector_missing", "projector_weights") if failed(n)]
    if grounding_failed or decisive:
        grounding_failed += [n for n in _GROUNDING if n not in grounding_failed and failed(n)]
        if projector_bad:
            diagnoses.append("projector_disconnected")
            summary += [sig[n].reason for n in projector_bad]
        elif not gibberish:  # a broken LLM cannot show grounding: do not also call it image-blind
            diagnoses.append("image_blind")
        summary += [sig[n].reason for n in grounding_failed]
    elif projector_bad:
        summary += [f"(not decisive) {sig[n].reason}" for n in projector_bad]

    leaks = [p for p in prompts if any(s.probe == "template_leak" and s.status == Status.FAIL for s in p.signals)]
    if failed("template_fit") or len(leaks) >= 2:
        diagnoses.append("template_mismatch")
        summary.append(sig["template_fit"].reason if failed("template_fit") else f"Role tags leak into {len(leaks)} answers.")

    errors = [p.error for p in prompts if p.error]
    if any("image tokens" in e.lower() and "features" in e.lower() for e in errors):
        diagnoses.append("image_token_mismatch")
        summary.append("The model and the processor disagree on the number of image tokens: " + errors[0])

    refusals = [p for p in prompts if p.category == "refusal" and p.answer is not None]
    missed = [p for p in refusals if any(s.probe == "expect" and s.status == Status.FAIL for s in p.signals)]
    if missed:
        diagnoses.append("refusal_missing")
        summary.append(f"{len(missed)}/{len(refusals)} refusal prompts were answered instead of refused ({missed[0].id}).")

    n_fail = sum(p.status == Status.FAIL for p in prompts)
    n_warn = sum(p.status == Status.WARN for p in prompts)
    n_err = sum(p.status == Status.ERROR for p in prompts)
    if n_err:
        summary.append(f"{n_err} prompts could not be evaluated: {errors[0] if errors else 'see the prompts'}")
        return Verdict(status=Status.ERROR, diagnoses=diagnoses, summary=summary, exit_code=EXIT_EVAL)
    gating = [d for d in diagnoses if d in gate.fail_on]
    gate_failed = bool(gating) or n_fail > gate.max_fail or n_warn > gate.max_warn
    summary.append(
        f"{n_fail} prompts failed (gate allows {gate.max_fail}), {n_warn} warned (gate allows {gate.max_warn})"
        + (f"; diagnoses that fail the gate: {', '.join(gating)}." if gating else ".")
    )
    status = Status.FAIL if gate_failed else worst([Status.WARN] if n_warn or n_fail else [Status.PASS])
    return Verdict(status=status, diagnoses=diagnoses, summary=summary, exit_code=EXIT_GATE if gate_failed else EXIT_OK)


def load_error_verdict(message: str) -> Verdict:
    """The verdict of a checkpoint that could not be loaded."""
    return Verdict(status=Status.ERROR, diagnoses=["load_error"], summary=[message], exit_code=EXIT_EVAL)
