"""What to ask: the suite schema, its bounded YAML reading, the bundled suites (package data)."""
