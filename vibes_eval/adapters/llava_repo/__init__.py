"""The original LLaVA / LLaVA-NeXT repositories' on-disk format, converted in memory to transformers."""
