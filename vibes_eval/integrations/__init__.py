"""Integrations with training frameworks: `vibes_eval.integrations.transformers.VibesCallback`.

Nothing is imported here: `import vibes_eval.integrations.transformers` imports transformers.
"""
