"""Scoring a forecast, and the two baselines every forecast of a series must beat.

    naive_forecast(values, start)              x_{p-1}: "the same as now", a random walk's best guess
    seasonal_forecast(values, season, start)   x_{p-season}: the same hour yesterday, month last year
    error_scores(targets, predicted)           {"rmse", "mae"}, in the series' units

Both baselines forecast the targets x_p for p = start .. len(values) - 1, so
they line up with each other and with a model's forecasts of the same targets.
"""

import numpy as np


def naive_forecast(values, start):
    """x_{p-1} for every target x_p, p = start .. len(values) - 1."""
    if start < 1:
        raise ValueError(f"Argument `start` ({start}) must be at least 1.")
    return np.asarray(values)[start - 1 : -1]


def seasonal_forecast(values, season, start):
    """x_{p-season} for every target x_p, p = start .. len(values) - 1."""
    if start < season:
        raise ValueError(f"Argument `start` ({start}) must be at least `season` ({season}).")
    values = np.asarray(values)
    return values[start - season : len(values) - season]


def error_scores(targets, predicted):
    """{"rmse", "mae"} of `predicted` against `targets`."""
    errors = np.asarray(predicted, dtype="float64") - np.asarray(targets, dtype="float64")
    return {"rmse": float(np.sqrt(np.mean(errors**2))), "mae": float(np.mean(np.abs(errors)))}
