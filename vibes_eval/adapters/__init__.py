"""Adapters: how vibes-eval talks to a checkpoint (the Adapter interface, detection, families, templates, loaders)."""
