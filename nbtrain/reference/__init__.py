"""The reference experiment: Lorenz-63 forecasting data and the ~672K-parameter model."""
