"""Visual-token budget: how many LLM positions one image costs, per family and per checkpoint."""
