"""The interactive dashboard for Jupyter: sliders for lr, clip and patience, Train/Stop, live plots.

Device and precision are controls too: a run trains where its config says (the trainer
resolves it), and its status and log lines name the device and precision it used.

``nbtrain.Dashboard`` builds the controls, trains in a background thread so the notebook
stays responsive, and redraws three plots while the run goes on: losses, the pre-clip
gradient norm per step with the clip threshold, and the LR with the scheduler's cuts.
Earlier runs of the session stay on the plots, drawn faintly, until "Clear history".
When a run ends, the diagnosis and the expectation verdicts appear below the plots, and
the trainer's log lines go to a log box.

Modules, along the flow of a click:

- ``layout``: the widgets and their arrangement, controls to and from config values;
- ``controller``: ``Dashboard``, the session's runs, the training and refresher threads;
- ``session``: the session's runs (``Session``), one run's rows as they arrive (``RunRecord``)
  and the callback that records them (``Recorder``);
- ``drawing``: the runs turned into the plot's PNG, by the helper process or in-process;
- ``pacing``: how often to redraw (``RedrawPacer``: the drawing's share of the time);
- ``report``: the status line and the diagnosis panel's HTML.

Threads and processes: the training thread only appends rows to the run's record under
a lock (the ``Recorder`` callback) and wakes the refresher. The refresher sends the new
rows to a helper process (``nbtrain.views.plotprocess``, at a lower priority than
training) that draws the plots with matplotlib's Agg canvas into a PNG
(``nbtrain.views.liveplot``), shown by an ``ipywidgets.Image``. Drawing in the helper keeps
matplotlib's Python off the training process's GIL. Redraws are spaced by what they cost
(``pacing``): at least ``refresh_interval`` seconds apart, and so that drawing's CPU, in
the kernel and in the helper together, stays below ``DRAW_SHARE`` (3%) of the time. Where
the helper cannot run, the refresher draws in-process, under the same budget. Widget
values are only assigned, never read, from these threads. Stopping is ``Trainer.stop()``:
the run ends after the current optimizer step and keeps its partial history.
"""

from .controller import Dashboard
from .layout import CONTROLLED_FIELDS, LR_RANGE
from .pacing import DRAW_SHARE, RedrawPacer

__all__ = ["CONTROLLED_FIELDS", "DRAW_SHARE", "LR_RANGE", "Dashboard", "RedrawPacer"]
