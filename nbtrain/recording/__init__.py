"""Recording loops nbtrain did not write into nbtrain run folders.

- ``Recorder`` (``nbtrain.Recorder``): a hand-written PyTorch loop; a drop-in for
  ``torch.nn.utils.clip_grad_norm_`` plus ``step``, ``evaluate`` and ``epoch_end`` calls.
- ``RunLog``: the rows, units and run folder every recorder shares (the Lightning and
  Hugging Face callbacks in ``nbtrain.integrations`` use it too).
- ``gradients``: the pre-clip norm, torch's clip coefficient, loss-scaler skips, one host sync per step.
"""

from .recorder import Recorder
from .runlog import RunLog

__all__ = ["Recorder", "RunLog"]
