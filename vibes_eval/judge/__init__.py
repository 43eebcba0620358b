"""From answers to a verdict: the evidence a run collects, the probe registry, thresholds, verdict, baseline."""
