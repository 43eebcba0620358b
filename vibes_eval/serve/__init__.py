"""`vibes-eval serve`: a minimal OpenAI-compatible server over a local checkpoint, and its connection bounds."""
