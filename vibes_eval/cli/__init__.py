"""The `vibes-eval` command line: the parser and one module per command."""
