"""Training logs that other tools wrote, read into a History: ``read_log``.

=======================  ===============================================  ================================
format                   what is read                                     module
=======================  ===============================================  ================================
``huggingface``          ``trainer_state.json`` (file, output folder,     ``huggingface``
                         ``checkpoint-N``)
``lightning``            ``CSVLogger``'s ``metrics.csv`` (file, version   ``lightning``
                         folder, log root)
``keras``                ``keras.callbacks.CSVLogger`` files              ``keras``
``tensorboard``          ``events.out.tfevents.*`` scalars                ``tensorboard``
``csv``, ``jsonl``       plain tables, well-known names or ``columns=``   ``plain``
``nbtrain``              a run folder or ``history.json``                 ``runfolders``
``nbtrain-sweep-trial``  a sweep trial's run folder (``done.json``)       ``runfolders``
=======================  ===============================================  ================================

The History a log becomes (the contract the diagnosis and the recorders share):

- ``History.steps``: one row per training log entry, in order: ``step`` (int, the global
  optimizer step as the log counts it; always there) and, where logged, ``epoch`` (as
  logged: an int, or a float for fractional epochs), ``loss``, ``grad_norm`` (pre-clip),
  ``lr``, ``clipped``, ``clip_factor``, ``skipped``, ``loss_scale``;
- ``History.epochs``: one row per evaluation point (an epoch end, or an evaluation every N
  steps): ``val_loss``, ``step`` (the step it was taken at), ``epoch`` (as logged),
  ``train_loss``, ``lr``, where the log has them;
- a value the log did not write at an entry is absent from the row (never NaN, never None);
  a NaN or infinity the log holds is a float NaN or infinity;
- ``History.meta``: ``source`` (``{"format", "path"}``), ``columns`` (log name -> nbtrain
  name, for every column read), ``notes`` (how the log was read, one sentence each),
  ``evaluation_unit`` (``"epoch"`` or ``"step"``: how reports name evaluation points) and
  ``config``, only with the TrainConfig fields the log states (``grad_clip`` from a
  Lightning ``hparams.yaml``); a scheduler is never assumed.

``load_log`` gives the command line and ``compare_runs`` one entry: a run folder with its
config, or any other log. Names: ``aliases`` (one table per format). Values: ``values``. Appended runs: ``runs``.
Optional libraries (``tensorboard``, ``yaml``) load only when a log needs them.
"""

from __future__ import annotations

from .errors import LogFormatError
from .loading import load_log
from .reader import FORMATS, read_log

__all__ = ["FORMATS", "LogFormatError", "load_log", "read_log"]
