"""Training: config and presets, the instrumented trainer, callbacks, history and run folders."""
