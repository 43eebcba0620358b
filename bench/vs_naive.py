"""`vibes-eval run` against the loop a user would write, side by side, and where the time goes.

    python bench/vs_naive.py --ckpt healthy --ckpt bench [--pairs 5] [--suite suites/shapes.yaml]

For each checkpoint, alternating A B A B (`--pairs` pairs), each side a fresh subprocess timed
end to end (interpreter start, imports, load, work, exit):
  A  the naive loop: AutoProcessor + AutoModelForImageTextToText (local_files_only), then for
     each prompt of the suite: processor, greedy `generate` with the suite's max_new_tokens, decode.
  B  `vibes-eval run CKPT --suite SUITE --out TMP --quiet`, every probe on.
Prints both medians and B/A, plus each side's own split (A: load / loop, B: evaluate seconds
from the scorecard). Then one in-process profile of B: seconds per stage (describe, generate:
answers and counterfactuals in one call, likelihoods, the rest), split into processor / vision tower / LLM time, the
requests the runner issues, the work actually done (images encoded, tokens prefilled, tokens
decoded) and the least work that would give the same scorecard.

--ckpt takes a folder, a toy variant name (`healthy`: copied from the zoo cache, trained once
if missing) or `bench` (vibes_eval.toy.bench, built into a temp folder). Device and dtype are
the runner's defaults on both sides: cuda + bfloat16 when present, else cpu + float32.
`--json FILE` also writes every figure. The children `_naive` and `_profile` are internal.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITE = ROOT / "suites" / "shapes.yaml"


# -- the parent: checkpoints, subprocesses, the table ---------------------------------------
def resolve_ckpt(spec: str, workdir: Path, seed: int = 0) -> Path:
    """A checkpoint folder for `spec`: a path, a toy variant name, or "bench" / "bench:SIZE".

    Toy variants and bench checkpoints are built in a subprocess, so that this process never
    imports torch (its memory and threads stay out of the measured children).
    """
    from vibes_eval.toy.variants import VARIANTS

    # names first: `bench` is also this script's folder when run from the repository root
    if spec not in VARIANTS and spec != "bench" and not spec.startswith("bench:"):
        if not Path(spec).is_dir():
            raise SystemExit(f"--ckpt {spec}: not a folder, a toy variant ({', '.join(VARIANTS)}), bench or bench:SIZE")
        return Path(spec).resolve()
    dest = workdir / spec.replace(":", "-")
    if spec.startswith("bench"):
        size = spec.partition(":")[2] or "bench"
        code = (f"import torch; from pathlib import Path; from vibes_eval.toy.bench import build_bench; "  # a 7b: init on the GPU
                f"build_bench(Path({str(dest)!r}), seed={seed}, size={size!r}, device='cuda' if torch.cuda.is_available() else 'cpu')")
    else:
        code = (f"from pathlib import Path; from vibes_eval.toy.factory import build; "
                f"build(Path({str(workdir)!r}), [{spec!r}], seed={seed}, log=lambda m: None)")
    subprocess.run([sys.executable, "-c", code], check=True)
    return dest


def provenance() -> str:
    """Which code was measured: the git commit, whether vibes_eval/ differs from it, api.py's hash."""
    sha = hashlib.sha256((ROOT / "vibes_eval" / "api.py").read_bytes()).hexdigest()[:12]
    git = ["git", "--no-optional-locks", "-C", str(ROOT)]  # read-only: no index refresh
    try:
        head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run([*git, "diff", "--quiet", "HEAD", "--", "vibes_eval"], capture_output=True, timeout=10).returncode == 1
    except (OSError, subprocess.SubprocessError):
        head, dirty = "", False
    return f"git {head or '?'}{' + uncommitted changes in vibes_eval/' if dirty else ''}; api.py sha256 {sha}"


def vibes_eval_cmd() -> list[str]:
    """The `vibes-eval` console script of this interpreter's environment (else `python -m vibes_eval`)."""
    script = Path(sys.executable).parent / "vibes-eval"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "vibes_eval"]


def child_env(threads: int | None) -> dict[str, str]:
    """The children's environment; `threads` pins torch's CPU threads (OpenMP/MKL) when given."""
    env = dict(os.environ)
    if threads:
        env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def spawn(cmd: list[str], log_dir: Path, name: str, env: dict[str, str] | None = None, preexec=None) -> dict:
    """Run `cmd` to completion: wall seconds, exit code, peak RSS (MiB) of that child, its stdout.

    `preexec`: run in the child before `cmd` starts (many.py puts it in a throttled cgroup there).
    """
    out, err = log_dir / f"{name}.out", log_dir / f"{name}.err"
    with out.open("w") as fo, err.open("w") as fe:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=fo, stderr=fe, cwd=ROOT, env=env, preexec_fn=preexec)
        _, status, usage = os.wait4(p.pid, 0)  # this child's own rusage, not the running max of all children
        seconds = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    rss = usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20
    return {"seconds": seconds, "rc": p.returncode, "peak_rss_mib": round(rss, 1),
            "stdout": out.read_text(), "stderr_tail": err.read_text()[-2000:]}


def suite_items(suite_path: Path) -> list[dict]:
    """(image, question, max_new_tokens) of every prompt: what the naive loop is handed."""
    from vibes_eval.suite.schema import load_suite

    suite = load_suite(suite_path)
    return [{"image": str(p.path), "question": p.question, "max_new_tokens": suite.max_new_tokens(p)} for p in suite.prompts]


def compare(ckpt: Path, suite: Path, pairs: int, work: Path, env: dict[str, str] | None = None) -> dict:
    """Alternate A (naive) and B (vibes-eval run) `pairs` times; each a fresh subprocess."""
    items = work / "items.json"
    items.write_text(json.dumps(suite_items(suite)))
    me = str(Path(__file__).resolve())
    runs: dict[str, list[dict]] = {"A": [], "B": []}
    for i in range(pairs):
        a = spawn([sys.executable, me, "_naive", str(ckpt), str(items)], work, f"a{i}", env)
        if a["rc"] != 0:
            raise SystemExit(f"naive loop failed (rc {a['rc']}):\n{a['stderr_tail']}")
        a.update(json.loads(a["stdout"].strip().splitlines()[-1]))
        out = work / f"b{i}"
        b = spawn([*vibes_eval_cmd(), "run", str(ckpt), "--suite", str(suite), "--out", str(out), "--quiet"], work, f"b{i}", env)
        if b["rc"] not in (0, 1):  # 1: the gate failed (random weights do); anything else: no scorecard to trust
            raise SystemExit(f"vibes-eval run failed (rc {b['rc']}):\n{b['stderr_tail']}")
        b["run_suite_s"] = json.loads((out / "scorecard.json").read_text())["seconds"]
        shutil.rmtree(out, ignore_errors=True)
        for side, r in (("A", a), ("B", b)):
            r.pop("stdout")
            r.pop("stderr_tail")
            runs[side].append(r)
        print(f"  pair {i + 1}: A {a['seconds']:6.2f} s   B {b['seconds']:6.2f} s", flush=True)
    med = {s: statistics.median(r["seconds"] for r in runs[s]) for s in runs}
    return {
        "checkpoint": str(ckpt), "pairs": pairs, "prompts": len(json.loads(items.read_text())), "runs": runs,
        "median_s": med, "ratio_b_over_a": med["B"] / med["A"],
        "median_a_load_s": statistics.median(r["load_s"] for r in runs["A"]),
        "median_a_loop_s": statistics.median(r["loop_s"] for r in runs["A"]),
        "median_b_run_suite_s": statistics.median(r["run_suite_s"] for r in runs["B"]),
        "peak_rss_mib": {s: max(r["peak_rss_mib"] for r in runs[s]) for s in runs},
    }


def print_compare(name: str, c: dict) -> None:
    m = c["median_s"]
    print(f"{name}: median of {c['pairs']} pairs (end to end, fresh process each)")
    print(
        f"  A naive loop      {m['A']:7.2f} s   (load {c['median_a_load_s']:.2f} s, "
        f"{c['prompts']}-prompt loop {c['median_a_loop_s']:.2f} s,"
        f" peak RSS {c['peak_rss_mib']['A']:.0f} MiB)"
    )
    print(f"  B vibes-eval run  {m['B']:7.2f} s   (evaluate {c['median_b_run_suite_s']:.2f} s, peak RSS {c['peak_rss_mib']['B']:.0f} MiB)")
    print(f"  B/A {c['ratio_b_over_a']:.2f}   work only (evaluate / loop): {c['median_b_run_suite_s'] / c['median_a_loop_s']:.2f}")


def print_profile(p: dict) -> None:
    print(f"  where B's time goes (one in-process evaluate, {p['device']}, {p['dtype']}; load {p['load_s']:.2f} s):")
    cols = ("seconds", "processor", "vision", "llm", "requests", "images", "prefill_tok", "decode_tok", "forwards")
    print(f"    {'stage':16}" + "".join(f"{c:>12}" for c in cols))
    for st in p["stages"]:
        print(f"    {st['stage']:16}" + "".join(
            f"{st.get(c, 0):12.2f}" if isinstance(st.get(c), float) else f"{st.get(c, ''):>12}" for c in cols))
    lw, act, ans = p["least"], p["actual"], p["answers_only"]
    print(f"    score requests: {p['score_requests']} ({p['score_breakdown']}); generate requests: {p['generate_requests']}")
    print(f"    work done:      {act['images']} image encodes, {act['prefill_tokens']} tokens prefilled, "
          f"{act['decode_tokens']} decoded, {act['forwards']} LLM forwards")
    print(f"    least work, same scorecard: {lw['images']} image encodes, ~{lw['prefill_tokens']} tokens prefilled "
          f"({lw['prefixes']} image prefixes of ~{lw['prefix_tokens']} tokens + the rest), {lw['decode_tokens']} decoded")
    nt = p["least_no_sweep"]
    print(f"    least work, no template sweep: {nt['images']} image encodes, ~{nt['prefill_tokens']} prefilled, "
          f"{nt['decode_tokens']} decoded")
    print(f"    least work, answers only (the naive loop's): {ans['images']} image encodes, ~{ans['prefill_tokens']} prefilled, "
          f"{ans['decode_tokens']} decoded")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ckpt", action="append", required=True, help="folder, toy variant name, bench, or bench:llava-1.5-7b; repeatable")
    ap.add_argument("--pairs", type=int, default=5, help="A B pairs per checkpoint (default 5)")
    ap.add_argument("--suite", type=Path, default=SUITE)
    ap.add_argument("--threads", type=int, help="torch CPU threads in every child (OMP_NUM_THREADS); "
                    "on a shared, busy machine 1 avoids spin-wait stalls that make timings swing 20x")
    ap.add_argument("--no-profile", action="store_true", help="skip the in-process stage profile")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write every figure here")
    args = ap.parse_args(argv)
    if args.pairs < 1:
        ap.error("--pairs must be at least 1")
    results = {}
    code = provenance()
    print(f"code: {code}; threads per child: {args.threads or 'torch default'}; load average {os.getloadavg()[0]:.1f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="vs-naive-") as tmp:
        for spec in args.ckpt:
            work = Path(tmp) / f"w{len(results)}"
            work.mkdir()
            t0 = time.perf_counter()
            ckpt = resolve_ckpt(spec, work / "ckpt", args.seed)
            print(f"{spec}: {ckpt} (ready in {time.perf_counter() - t0:.1f} s)", flush=True)
            c = compare(ckpt, args.suite, args.pairs, work, child_env(args.threads))
            c["threads"], c["code"] = args.threads, code
            print_compare(spec, c)
            if not args.no_profile:
                r = spawn([sys.executable, str(Path(__file__).resolve()), "_profile", str(ckpt), str(args.suite)], work, "profile",
                          child_env(args.threads))
                if r["rc"] != 0:
                    raise SystemExit(f"profile failed (rc {r['rc']}):\n{r['stderr_tail']}")
                c["profile"] = json.loads(r["stdout"].strip().splitlines()[-1])
                print_profile(c["profile"])
            c["load_average_after"] = os.getloadavg()[0]
            results[spec] = c
            print(f"  (load average now {c['load_average_after']:.1f})", flush=True)
            print(flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


# -- child A: the naive loop, as a user would write it ----------------------------------------
def naive(ckpt: str, items_file: str) -> None:
    t0 = time.perf_counter()
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    items = json.loads(Path(items_file).read_text())
    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    t1 = time.perf_counter()
    processor = AutoProcessor.from_pretrained(ckpt, local_files_only=True)
    model = AutoModelForImageTextToText.from_pretrained(ckpt, dtype=dtype, local_files_only=True).to(device).eval()
    t2 = time.perf_counter()
    new_tokens = 0
    for item in items:
        image = Image.open(item["image"]).convert("RGB")
        conversation = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": item["question"]}]}]
        prompt = processor.apply_chat_template(conversation, add_generation_prompt=True)
        inputs = processor(images=image, text=prompt, return_tensors="pt").to(device)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=item["max_new_tokens"], do_sample=False)
        new = out[0, inputs["input_ids"].shape[1]:]
        processor.decode(new, skip_special_tokens=True)
        new_tokens += int(new.numel())
    if device == "cuda":
        torch.cuda.synchronize()
    t3 = time.perf_counter()
    print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "loop_s": t3 - t2, "new_tokens": new_tokens}))


# -- child: the runner in-process, with a timer on every adapter method -------------------------
class _Meter:
    """Seconds and work per stage; the adapter wrappers set the stage, model hooks add to it."""

    def __init__(self, sync):
        self.stage = "other"
        self.sync = sync
        self.rows: dict[str, dict] = {}
        self._t: dict[str, float] = {}

    def row(self) -> dict:
        return self.rows.setdefault(self.stage, {"stage": self.stage, "seconds": 0.0, "processor": 0.0, "vision": 0.0,
                                                 "llm": 0.0, "requests": 0, "images": 0, "prefill_tok": 0,
                                                 "decode_tok": 0, "forwards": 0})

    def start(self, key):
        self.sync()
        self._t[key] = time.perf_counter()

    def stop(self, key):
        self.sync()
        self.row()[key] += time.perf_counter() - self._t.pop(key)


def profile(ckpt: str, suite_path: str) -> None:
    import torch

    from vibes_eval.adapters.base import AdapterSpec
    from vibes_eval.adapters.hf.model import load_image
    from vibes_eval.adapters.opening import open_adapter
    from vibes_eval.api import evaluate
    from vibes_eval.suite.schema import load_suite

    suite = load_suite(Path(suite_path))
    t0 = time.perf_counter()
    adapter = open_adapter(AdapterSpec(checkpoint=Path(ckpt)))
    load_s = time.perf_counter() - t0
    if adapter.device == "cpu":  # as `vibes-eval run` does
        from vibes_eval.adapters.hf.model import tune_cpu_malloc

        tune_cpu_malloc()
    cuda = str(adapter.model.device).startswith("cuda")
    meter = _Meter(torch.cuda.synchronize if cuda else (lambda: None))
    calls: dict[str, list] = {"generate": [], "score": []}

    def wrap(name):
        inner = getattr(adapter, name)

        def timed(*a, **kw):
            if name == "generate":
                meter.stage = "generate"  # the answers and the counterfactual variants, in one call
            else:
                meter.stage = {"score": "likelihoods", "describe": "describe"}[name]
            if name in calls:
                calls[name].append(a)
                meter.row()["requests"] += len(a[0])
            meter.start("seconds")
            try:
                result = inner(*a, **kw)
            finally:
                meter.stop("seconds")
                meter.stage = "other"
            if name == "generate":
                calls[name][-1] = (a[0], result)
            return result
        setattr(adapter, name, timed)

    for name in ("generate", "score", "describe"):
        wrap(name)
    inputs = adapter._inputs

    def timed_inputs(*a, **kw):
        meter.start("processor")
        try:
            return inputs(*a, **kw)
        finally:
            meter.stop("processor")
    adapter._inputs = timed_inputs

    core = getattr(adapter.model, "model", adapter.model)

    def vision_pre(mod, args, kwargs):
        pix = args[0] if args else kwargs.get("pixel_values")
        meter.row()["images"] += int(pix.shape[0])
        meter.start("vision")

    def llm_pre(mod, args, kwargs):
        emb = kwargs.get("inputs_embeds")
        b, t = (emb.shape[0], emb.shape[1]) if emb is not None else kwargs["input_ids"].shape
        r = meter.row()
        r["forwards"] += 1
        r["prefill_tok" if t > 1 else "decode_tok"] += int(b * t)
        meter.start("llm")

    core.vision_tower.register_forward_pre_hook(vision_pre, with_kwargs=True)
    core.vision_tower.register_forward_hook(lambda *a: meter.stop("vision"))
    core.language_model.register_forward_pre_hook(llm_pre, with_kwargs=True)
    core.language_model.register_forward_hook(lambda *a: meter.stop("llm"))

    t1 = time.perf_counter()
    sc = evaluate(adapter, suite, label=ckpt)
    total = time.perf_counter() - t1
    stages = [meter.rows[s] for s in ("describe", "generate", "likelihoods") if s in meter.rows]
    rest = {"stage": "probes+verdict", "seconds": total - sum(s["seconds"] for s in stages)}
    tot = {"stage": "total evaluate", "seconds": total}
    for k in ("processor", "vision", "llm", "requests", "images", "prefill_tok", "decode_tok", "forwards"):
        tot[k] = sum(s[k] for s in stages)

    # the least work: each distinct image encoded once; each distinct (template text before the
    # image, image) prefix prefilled once and its KV reused; every other token prefilled once;
    # the same decode steps, without padding rows
    tok = adapter.processor.tokenizer
    image_token = getattr(adapter.processor, "image_token", "<image>")
    v = int(sc.fingerprint.get("visual_tokens") or 0)
    image_key = {}

    def key(r):
        if r.variant == "blank":  # blank images are flat grey of the image's size: one per size
            k = (r.image, "blank")
            if k not in image_key:
                image_key[k] = ("blank", load_image(r.image).size)
            return image_key[k]
        return str(r.image)

    def ntok(text, special=False):
        return len(tok(text, add_special_tokens=special)["input_ids"]) if text else 0

    def least(reqs_targets, answers):
        prefixes, rest_tokens = {}, 0
        for r, target in reqs_targets:
            head, _, tail = adapter.render_prompt(r.question, r.template).partition(image_token)
            prefixes.setdefault((head, key(r)), ntok(head, special=True) + v)
            rest_tokens += ntok(tail) + (ntok(" " + target.strip()) + 1 if target is not None else 0)
        return {"images": len({k for _, k in prefixes}), "prefixes": len(prefixes),
                "prefix_tokens": round(statistics.mean(prefixes.values())) if prefixes else 0,
                "prefill_tokens": sum(prefixes.values()) + rest_tokens,
                "decode_tokens": sum(max(n - 1, 0) for n in answers)}

    gen_reqs = [r for reqs, _ in calls["generate"] for r in reqs]
    # tokens each answer generated (the EOS included where it stopped there); the first comes from the prefill
    generated = [[x.new_tokens + (x.finish == "eos") for x in resps] for _, resps in calls["generate"]]
    score_pairs = [(r, t) for a in calls["score"] for r, t in zip(a[0], a[1])]
    breakdown = {}
    for r, _ in score_pairs:
        kind = "template sweep" if r.template else r.variant
        breakdown[kind] = breakdown.get(kind, 0) + 1
    print(json.dumps({
        "device": str(adapter.model.device), "dtype": adapter.dtype, "load_s": load_s,
        "stages": [*stages, rest, tot],
        "generate_requests": len(gen_reqs), "score_requests": len(score_pairs),
        "score_breakdown": ", ".join(f"{k} {n}" for k, n in breakdown.items()),
        "actual": {"images": tot["images"], "prefill_tokens": tot["prefill_tok"], "decode_tokens": tot["decode_tok"],
                   "forwards": tot["forwards"]},
        "least": least([(r, None) for r in gen_reqs] + score_pairs, [n for g in generated for n in g]),
        "least_no_sweep": least([(r, None) for r in gen_reqs] + [(r, t) for r, t in score_pairs if not r.template],
                                [n for g in generated for n in g]),
        "answers_only": least([(r, None) for r in gen_reqs if r.variant == "real"],
                              [n for (reqs, _), g in zip(calls["generate"], generated) for r, n in zip(reqs, g) if r.variant == "real"]),
    }))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_naive":
        naive(*sys.argv[2:4])
    elif len(sys.argv) > 1 and sys.argv[1] == "_profile":
        profile(*sys.argv[2:4])
    else:
        sys.exit(main())
