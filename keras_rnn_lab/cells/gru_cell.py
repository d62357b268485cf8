"""The lecture's gated recurrent unit, in Keras's and the lecture's conventions."""

import keras
import numpy as np

from keras_rnn_lab import _validation
from keras_rnn_lab.cells.cell_base import RecurrentCell

UPDATE_CONVENTIONS = ("keras", "lecture")


@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class GRUCell(RecurrentCell):
    """One step of a GRU, gates in Keras's order z, r, h~.

        z_t  = sigma(x_t U_z + h_{t-1} W_z + b_z)           update gate
        r_t  = sigma(x_t U_r + h_{t-1} W_r + b_r)           reset gate
        h~_t = tanh(x_t U_h + (r_t * h_{t-1}) W_h + b_h)    reset_after=False (lecture)
        h~_t = tanh(x_t U_h + r_t * (h_{t-1} W_h + b'_h))   reset_after=True (Keras/cuDNN)
        h_t  = z_t * h_{t-1} + (1 - z_t) * h~_t             update_convention="keras"
        h_t  = (1 - z_t) * h_{t-1} + z_t * h~_t             update_convention="lecture"

    With `reset_after=True` the bias has shape (2, 3*units): row 0 is added to the
    input projection, row 1 (b') to the recurrent one, as in `keras.layers.GRUCell`.
    Weight drop, `recurrent_kernel_dropout` = p: when training, W_z, W_r, W_h are
    the blocks of W~ = W * M / (1 - p), M ~ Bernoulli(1 - p) of W's shape
    (units, 3*units), drawn once per batch; inference uses W.

    The two conventions differ only in what z means: the lecture's z_t is Keras's
    1 - z_t = sigma(-a_t).  Negating the z columns of U, W and b therefore turns
    one into the other exactly; `convert_gru_update_convention` does that.
    """

    gates = 3
    accepts_implementation = True

    def __init__(
        self,
        units,
        activation="tanh",
        recurrent_activation="sigmoid",
        *,  # keyword-only from here: Keras's 4th positional argument is use_bias
        reset_after=True,
        update_convention="keras",
        **kwargs,
    ):
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = _validation.get_activation("recurrent_activation", recurrent_activation)
        self.reset_after = bool(reset_after)
        if update_convention not in UPDATE_CONVENTIONS:
            raise ValueError(
                f"Argument `update_convention` must be one of {UPDATE_CONVENTIONS}; received {update_convention!r}."
            )
        self.update_convention = update_convention

    def bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def input_bias(self):
        if self.bias is None or not self.reset_after:
            return self.bias
        return self.bias[0]

    def recurrent_bias(self):
        if self.bias is None or not self.reset_after:
            return None
        return self.bias[1]

    def call(self, inputs, states, training=False):
        h_prev = states[0] if isinstance(states, (list, tuple)) else states
        x, h_prev_dropped = self.masked_step_inputs(inputs, h_prev, training)
        x_z, x_r, x_h = keras.ops.split(self.project_inputs(x), 3, axis=-1)
        w = self.step_recurrent_kernel(training)  # (units, 3*units): W, or this batch's W~
        w_zr, w_h = w[:, : 2 * self.units], w[:, 2 * self.units :]
        if self.reset_after:
            recurrent = keras.ops.matmul(h_prev_dropped, w)
            if self.recurrent_bias() is not None:
                recurrent = recurrent + self.recurrent_bias()
            rec_z, rec_r, rec_h = keras.ops.split(recurrent, 3, axis=-1)
        else:
            rec_z, rec_r = keras.ops.split(keras.ops.matmul(h_prev_dropped, w_zr), 2, axis=-1)
        z = self.recurrent_activation(x_z + rec_z)
        r = self.recurrent_activation(x_r + rec_r)
        if self.reset_after:
            h_candidate = self.activation(x_h + r * rec_h)
        else:
            h_candidate = self.activation(x_h + keras.ops.matmul(r * h_prev_dropped, w_h))
        if self.update_convention == "keras":
            h = z * h_prev + (1.0 - z) * h_candidate
        else:
            h = (1.0 - z) * h_prev + z * h_candidate
        return h, [h] if isinstance(states, (list, tuple)) else h

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "reset_after": self.reset_after,
            "update_convention": self.update_convention,
        }


def convert_gru_update_convention(weights):
    """Convert GRU weights between the Keras and the lecture update convention.

    `weights` is `[kernel, recurrent_kernel]` or `[kernel, recurrent_kernel, bias]`
    as returned by `get_weights()` of a GRU cell or layer.  Because the lecture's
    z_t = sigma(-a_t) = 1 - sigma(a_t) is Keras's 1 - z_t, negating the z block
    (the first `units` columns, in every bias row) of each array maps one
    convention onto the other; applying it twice gives the original weights.

        lecture_cell.set_weights(convert_gru_update_convention(keras_cell.get_weights()))

    Exact for `recurrent_activation="sigmoid"` (sigma(-a) = 1 - sigma(a)); other
    recurrent activations lack that symmetry and raise nothing here, so use it
    with sigmoid cells only.
    """
    if not isinstance(weights, (list, tuple)) or len(weights) not in (2, 3):
        raise ValueError(
            "Argument `weights` must be [kernel, recurrent_kernel] or "
            f"[kernel, recurrent_kernel, bias]; received {type(weights).__name__} "
            f"of length {len(weights) if hasattr(weights, '__len__') else 'unknown'}."
        )
    recurrent_kernel = np.asarray(weights[1])
    units = recurrent_kernel.shape[0]
    if recurrent_kernel.shape != (units, 3 * units):
        raise ValueError(
            f"Argument `weights[1]` (recurrent_kernel) must have shape (units, 3*units); "
            f"received {recurrent_kernel.shape}."
        )
    converted = []
    for array in weights:
        array = np.array(array, copy=True)
        array[..., :units] = -array[..., :units]
        converted.append(array)
    return converted
