"""The forecast recipe's scaler, kept inside the model so a saved forecast knows
its units (`SeriesScale`), and the helpers that find and apply it."""

import math
import numbers

import keras
import numpy as np

# What `export` says about a model saved before forecasts kept their scaler.
OLD_MODEL_NOTE = (
    "note: this forecast model was saved before it kept its scaler: the exported next_value is "
    "standardized; multiply it by the training period's std and add its mean (printed by training), "
    "or retrain to export forecasts in the series' units."
)


@keras.saving.register_keras_serializable(package="recipes.forecast")
class SeriesScale(keras.layers.Layer):
    """The training period's standardization, carried at the model's output.

    The network learns and is scored on standardized values z = (x - mean) / std
    (the loss, early stopping and `keras-rnn-lab evaluate` all see z), so the
    layer passes z through unchanged; what it adds is `mean` and `std` in its
    config, saved with the model, and `to_units(z) = z * std + mean`, the
    forecast in the series' own units (`unit`, e.g. "°F"), which the export
    and the recipe's evaluation apply.
    """

    def __init__(self, mean, std, unit="", **kwargs):
        super().__init__(**kwargs)
        for name, value in (("mean", mean), ("std", std)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
                raise TypeError(f"Argument `{name}` must be a finite float; received {value!r}.")
        if not std > 0:
            raise ValueError(f"Argument `std` must be positive; received {std!r}.")
        self.mean, self.std, self.unit = float(mean), float(std), str(unit)

    def call(self, inputs):
        return inputs  # (batch, time, 1) standardized: what the loss is computed on

    def compute_output_shape(self, input_shape):
        return input_shape

    def to_units(self, standardized):
        """z -> z * std + mean, in the series' units (a tensor or an array)."""
        return keras.ops.add(keras.ops.multiply(standardized, self.std), self.mean)

    def get_config(self):
        return {**super().get_config(), "mean": self.mean, "std": self.std, "unit": self.unit}


def series_scale(model):
    """The model's SeriesScale layer; None for a model saved before forecasts kept their scaler."""
    return next((layer for layer in model.layers if isinstance(layer, SeriesScale)), None)


def to_units(model, standardized, scaler=None):
    """The model's outputs (standardized) in the series' units: z * std + mean with
    the training period's statistics kept in the model, or `scaler`'s for an
    older model without them."""
    scale = series_scale(model)
    if scale is not None:
        return np.asarray(standardized, dtype="float64") * scale.std + scale.mean
    if scaler is None:
        raise ValueError(
            f"Model {model.name!r} holds no SeriesScale (it was saved before forecasts kept their scaler); "
            "pass the training period's `scaler` to turn its outputs into the series' units."
        )
    return scaler.inverse_transform(standardized)
