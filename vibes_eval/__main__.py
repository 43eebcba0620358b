"""`python -m vibes_eval` is the same as the `vibes-eval` command."""

from vibes_eval.cli.main import console_main

console_main()
