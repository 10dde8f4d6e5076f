"""Probes: measurements that train or perturb a copy of the model, then restore it."""
