"""Diagnosis: findings on a log, the plateau simulator, expectations, symptoms, summaries.

Reads a History (or a log in the same shape); never imports the trainer or the views."""
