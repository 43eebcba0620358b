"""Package data: the bundled suites (YAML) and their images; read with importlib.resources."""
