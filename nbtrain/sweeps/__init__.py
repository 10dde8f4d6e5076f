"""Sweeps: grids of runs over config fields and seeds, on a process pool or Ray, and their plots."""
