"""The `vibes-eval` command: parse, call one function, render, return an exit code.

Exit codes (vibes_eval.errors): 0 passed, 1 the gate failed, 2 bad usage or suite, 3 the
checkpoint could not be evaluated; a VibesError a command raises becomes one line on stderr
and its exit code here. Heavy imports (torch, transformers) happen inside the commands that need them,
so `--help`, `validate`, `budget` and `compare` stay fast.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from vibes_eval.errors import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_TERMINATED,
    EXIT_USAGE,
    Terminated,
    UsageError,
    VibesError,
    exit_code_for,
    report,
)

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vibes-eval",
        description="A one-minute smoke test for LLaVA-family checkpoints: does it still see, speak and behave?",
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    from vibes_eval.cli.run import add_run_parser

    add_run_parser(sub)

    val = sub.add_parser("validate", help="check a suite file; exit 0 or 2 with `file: field: problem`")
    val.add_argument("suite", metavar="SUITE")

    from vibes_eval.cli.budget import add_budget_parser
    from vibes_eval.cli.check_answers import add_check_answers_parser
    from vibes_eval.cli.compare import add_compare_parser
    from vibes_eval.serve.server import add_serve_parser

    add_budget_parser(sub)
    add_check_answers_parser(sub)
    add_compare_parser(sub)
    add_serve_parser(sub)
    from vibes_eval.cli.watch import add_watch_parsers

    add_watch_parsers(sub)  # watch, trend

    demo = sub.add_parser("demo", help="build the toy zoo and run every variant through the gate")
    demo.add_argument("--out", type=Path, default=Path("reports/demo"), help="where the zoo and the reports go")
    demo.add_argument("--seed", type=int, default=0)

    toy = sub.add_parser("toy", help="the toy LLaVA factory (tiny checkpoints, healthy and broken)")
    toy_sub = toy.add_subparsers(dest="toy_command", metavar="TOY_COMMAND")
    tb = toy_sub.add_parser("build", help="train (once, cached) and write toy checkpoints to OUT_DIR/<variant>/")
    tb.add_argument("out", metavar="OUT_DIR", type=Path)
    tb.add_argument(
        "--variant",
        action="append",
        help="a variant name, 'all' (default), or 'bench' (random weights, llava-1.5 geometry, for bench/); repeatable",
    )
    tb.add_argument("--seed", type=int, default=0)
    tb.add_argument("--format", choices=["hf", "llava-repo", "llava-next-repo", *_LAYOUT_FORMATS], default="hf",
                    help="hf: transformers-native folders; llava-repo: the original LLaVA repo's full/, stage1/, lora/, base/, "
                    "vision_tower/; llava-next-repo: the LLaVA-NeXT repo's (LlavaQwenForCausalLM) pad/, anyres_max/, vision_tower/; "
                    "peft-lora: a LoRA run's output, peft-lora/{base,healthy,no-projector,hub-base}/; distributed: "
                    "distributed/{zero3,zero3-empty,zero2,fsdp,empty-tensors}/ as DeepSpeed and FSDP leave them; "
                    "vipllava: the toy as ViP-LLaVA, vipllava/{healthy,disconnected}/")
    toy_sub.add_parser("list", help="list the toy variants")
    return p


def _cmd_toy(args) -> int:
    from vibes_eval.toy.factory import build
    from vibes_eval.toy.variants import VARIANTS

    if args.toy_command == "list":
        for name, what in VARIANTS.items():
            print(f"{name:18} {what}")
        return EXIT_OK
    if args.toy_command != "build":
        raise UsageError("toy: say `toy build OUT_DIR` or `toy list`")
    if args.format in _LAYOUT_FORMATS:  # layouts of the healthy toy, not variants
        return _toy_layouts(args)
    wanted = [v.replace("_", "-") for v in args.variant or ["all"]]  # image_blind as the diagnosis spells it: image-blind
    if "bench" in wanted:  # random weights, llava-1.5 geometry; not a zoo variant ("all" leaves it out)
        from vibes_eval.toy.bench import build_bench

        dest = build_bench(args.out / "bench", seed=args.seed)
        print(f"bench: {dest} (random weights, 576 visual tokens, exactly 32 new tokens per answer)")
        wanted = [v for v in wanted if v != "bench"]
        if not wanted:
            return EXIT_OK
    variants = list(VARIANTS) if "all" in wanted else wanted
    for v in variants:
        if v not in VARIANTS:
            raise UsageError(f"--variant: unknown variant {v!r}; known: all, {', '.join(VARIANTS)}")
    from vibes_eval.toy.progress import Bars

    with Bars.rich() as bars:  # the zoo is written from the shipped weights, or trained: bars with an ETA
        if args.format == "llava-repo":
            from vibes_eval.toy.llava_repo_format import build_llava_repo

            info = build_llava_repo(args.out, variants, seed=args.seed, log=bars.log, bars=bars)
        elif args.format == "llava-next-repo":
            from vibes_eval.toy.llava_next_repo_format import build_llava_next_repo

            info = build_llava_next_repo(args.out, variants, seed=args.seed, log=bars.log, bars=bars)
        else:
            info = build(args.out, variants, seed=args.seed, log=bars.log, bars=bars)
    _print_zoo(info, variants, args.out)
    return EXIT_OK


_LAYOUT_FORMATS = ("peft-lora", "distributed", "vipllava")
"""`toy build --format` values that write layouts of the healthy toy (issue 21), not the zoo's variants."""


def _toy_layouts(args) -> int:
    """`toy build OUT --format peft-lora|distributed|vipllava`: each folder written, one line each."""
    from vibes_eval.toy.progress import Bars

    if args.variant:
        raise UsageError(f"--variant: --format {args.format} writes its own layouts of the healthy toy, not variants")
    with Bars.rich() as bars:
        kw = {"seed": args.seed, "log": bars.log, "bars": bars}
        if args.format == "peft-lora":
            from vibes_eval.toy.peft_format import build_peft

            build_peft(args.out, **kw)
        elif args.format == "distributed":
            from vibes_eval.toy.distributed_format import build_distributed

            build_distributed(args.out, **kw)
        else:
            from vibes_eval.toy.family_format import build_family

            build_family(args.out, **kw)
    for folder in sorted((args.out / args.format).iterdir()):
        print(f"{args.format}: {folder}")
    return EXIT_OK


def _print_zoo(info: dict, variants: list[str], out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    acc = info["accuracy_heldout"]
    families = list(next(iter(acc.values())))
    table = Table(title=f"toy zoo v{info['factory_version']} seed {info['seed']}: held-out accuracy", title_justify="left")
    table.add_column("variant")
    for fam in families:
        table.add_column(fam, justify="right")
    table.add_column("folder")
    for v in variants:
        table.add_row(v, *(f"{acc[v][f]:.2f}" for f in families), str(out / v))
    Console().print(table)


def _cmd_validate(args) -> int:
    from vibes_eval.suite.schema import validate_command

    return validate_command(args.suite)


def _cmd_budget(args) -> int:
    from vibes_eval.cli.budget import budget_command

    return budget_command(args)


def _cmd_compare(args) -> int:
    from vibes_eval.cli.compare import compare_command

    return compare_command(args)


def _cmd_demo(args) -> int:
    from vibes_eval.cli.demo import demo_command

    return demo_command(args)


def _cmd_serve(args) -> int:
    from vibes_eval.serve.server import serve_command

    return serve_command(args)


def _cmd_watch(args) -> int:
    from vibes_eval.cli.watch import watch_command

    return watch_command(args)


def _cmd_trend(args) -> int:
    from vibes_eval.cli.watch import trend_command

    return trend_command(args)


def _cmd_check_answers(args) -> int:
    from vibes_eval.cli.check_answers import check_answers_command

    return check_answers_command(args)


def _cmd_run(args) -> int:
    from vibes_eval.cli.run import run_command

    return run_command(args)


COMMANDS = {"demo": _cmd_demo, "run": _cmd_run, "validate": _cmd_validate, "budget": _cmd_budget, "compare": _cmd_compare, "toy": _cmd_toy,
            "check-answers": _cmd_check_answers,
            "serve": _cmd_serve, "watch": _cmd_watch, "trend": _cmd_trend}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return COMMANDS[args.command](args)
    except VibesError as e:  # one line; errors.exit_code_for maps it to 2 or 3
        return report(e)
    except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (console_main): files being written are removed, finished ones stay
        return _interrupted(e)


def _interrupted(e: KeyboardInterrupt) -> int:
    """Say `vibes-eval: interrupted` (or terminated) once; 130 or 143."""
    import vibes_eval.interrupt as interrupt

    print(f"vibes-eval: {'terminated' if isinstance(e, Terminated) else 'interrupted'}", file=sys.stderr, flush=True)
    interrupt.said()
    return exit_code_for(e)


def console_main() -> None:
    """The `vibes-eval` command: `main`, then exit without the interpreter's teardown.

    With torch and transformers imported, Python's shutdown (module teardown, atexit handlers)
    takes about a second here (`python -c "import torch, transformers"` alone spends 0.4-0.9 s
    exiting), a second every CI gate would wait for after the reports are already written; and
    after Ctrl-C it would join worker threads still waiting on a server. So stdout and stderr are
    flushed and the process ends with `os._exit`; every file the command writes is closed before
    `main` returns. Not under a profiler, a tracer or coverage (they write their data at exit),
    nor with VIBES_EVAL_FAST_EXIT=0.

    Ctrl-C and SIGTERM (`vibes_eval.interrupt`) unwind as KeyboardInterrupt / Terminated (a file
    being written is removed), are remembered where a library swallows them, and end the process
    within about a second, with 130 / 143; one that arrives once the command is over is only
    recorded, and still gives 130 / 143.
    """
    import os

    import vibes_eval.interrupt as interrupt

    interrupt.install()
    try:
        code = main()
    except KeyboardInterrupt as e:  # before the command started (parsing its arguments)
        code = _interrupted(e)
    interrupt.settle()
    observed = sys.gettrace() is not None or sys.getprofile() is not None or "coverage" in sys.modules
    if observed or os.environ.get("VIBES_EVAL_FAST_EXIT") == "0":
        raise SystemExit(_final_code(code))  # a profiler or coverage writes its data at exit: let it
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`vibes-eval ... | head`): nothing left to deliver
            code = code or 1
    os._exit(_final_code(code))


def _final_code(code: int) -> int:
    """`code`, or 130 / 143 when a stop was asked for (a library swallowed it, or it came as the command ended)."""
    import vibes_eval.interrupt as interrupt

    if interrupt.requested() is not None and code not in (EXIT_INTERRUPTED, EXIT_TERMINATED):
        return _interrupted(interrupt.exception())
    return code
