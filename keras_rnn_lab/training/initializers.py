"""The lecture's weight initialisation and the LSTM forget-gate bias."""

import math
import numbers

import keras
import numpy as np


@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class ForgetGateBias(keras.initializers.Initializer):
    """An LSTM bias (4*units,) of zeros with `value` in the forget-gate block
    (Keras's gate order i, f, c, o), so f_t = sigma(... + value) starts near
    sigma(value): 1 -> 0.73, 2 -> 0.88, 3 -> 0.95 of the memory kept per step."""

    def __init__(self, value=1.0):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"Argument `value` must be a finite number; received {value!r}.")
        self.value = float(value)

    def __call__(self, shape, dtype=None):
        if len(shape) != 1 or shape[0] % 4:
            raise ValueError(
                f"ForgetGateBias initializes an LSTM bias of shape (4*units,); received shape {tuple(shape)}."
            )
        units = shape[0] // 4
        bias = np.zeros(shape, dtype="float32")
        bias[units : 2 * units] = self.value
        return keras.ops.convert_to_tensor(bias, dtype=dtype or "float32")

    def get_config(self):
        return {"value": self.value}


# The lecture's demo draws every weight from a normal distribution of scale 0.1.

LECTURE_STDDEV = 0.1

INITIALISATIONS = ("lecture", "keras")


def initialisation(cell, scheme="keras", forget_bias=None, seed=None):
    """Keyword arguments for `recurrent_layer` that set its initial weights.

    scheme "lecture": kernel and recurrent kernel from N(0, 0.1), biases 0;
    "keras": Keras's defaults (Glorot-uniform kernel, orthogonal recurrent
    kernel, zero biases).  `forget_bias` (LSTM only) starts the forget gate's
    bias there (None: Keras's unit_forget_bias, i.e. 1).
    """
    if scheme not in INITIALISATIONS:
        raise ValueError(f"Argument `scheme` must be one of {INITIALISATIONS}; received {scheme!r}.")
    kwargs = {}
    if scheme == "lecture":
        seeds = (None, None) if seed is None else (seed, seed + 1)
        kwargs["kernel_initializer"] = keras.initializers.RandomNormal(stddev=LECTURE_STDDEV, seed=seeds[0])
        kwargs["recurrent_initializer"] = keras.initializers.RandomNormal(stddev=LECTURE_STDDEV, seed=seeds[1])
    if forget_bias is not None:
        if cell != "lstm":
            raise ValueError(
                f"Argument `forget_bias` applies to the LSTM only; received cell={cell!r}, forget_bias={forget_bias!r}."
            )
        kwargs["unit_forget_bias"] = False
        kwargs["bias_initializer"] = ForgetGateBias(forget_bias)
    return kwargs
