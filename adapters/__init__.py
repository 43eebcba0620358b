"""Package data: the adapter profiles (YAML); read with importlib.resources."""
