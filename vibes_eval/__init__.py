"""vibes-eval: a one-minute smoke test for LLaVA-family checkpoints."""

__all__ = ["__version__"]

__version__ = "0.1.0"
