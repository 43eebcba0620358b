"""SGLang's native API (`/generate` with the image, prompt log-probabilities, the image-offset check)."""
