"""A checkpoint behind an OpenAI-compatible server (vLLM, SGLang, `vibes-eval serve`)."""
