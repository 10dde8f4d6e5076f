"""The next round: fixes proposed from a run's diagnosis, verified by paired runs, written up.

``nbtrain.next_round(run)`` (``api``) reads the run's findings and the probes' measurements
(``evidence``), turns them into candidate changes by a documented rulebook (``rulebook``,
``candidates``), trains each against the unchanged config from the same seeds on the sweep
backend within a time budget (``trials``, ``budget``, ``verify``), predicts from the screen
and checks the predictions on the final runs (``expectations``), and writes the round in the
structure of the write-up that started nbtrain (``report``, ``monitoring``). The command
line: ``nbtrain next-round RUN_DIR`` (``command``).
"""
