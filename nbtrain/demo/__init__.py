"""The demo (``nbtrain demo``): round 1 and round 2 trained, compared, judged and written up.

``runner`` (``run_demo``: train, write summary.md and summary.png, print), ``outcome`` (one
round's numbers), ``table`` (the side-by-side table, console and markdown) and ``verdict`` (the
paragraph a person acts on). The figure is ``nbtrain.views.rounds_figure``.
"""
