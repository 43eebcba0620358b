"""`python -m vibes_eval` is the same as the `vibes-eval` command."""

from vibes_eval.cli import console_main

console_main()
