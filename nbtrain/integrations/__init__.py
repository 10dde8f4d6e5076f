"""Callbacks that record other frameworks' training loops into nbtrain run folders.

- ``nbtrain.integrations.lightning.NbtrainCallback``: a ``lightning.pytorch.Callback``
  (install ``nbtrain[lightning]``);
- ``nbtrain.integrations.transformers.NbtrainCallback``: a Hugging Face ``TrainerCallback``
  (install ``nbtrain[transformers]``).

Each module imports without its framework; the framework is imported when
``NbtrainCallback`` is first used. Both write what ``nbtrain.Recorder`` writes (see
``nbtrain.recording``), with ``meta["source"]["format"]`` "lightning-callback" or
"transformers-callback".
"""
