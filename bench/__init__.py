"""Load scenarios, peer baselines (raw, kopf), reports and plots for ``kubetrain bench``."""
