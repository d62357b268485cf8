"""Fast GRU layer: `keras.layers.RNN(GRUCell)` with hand-written BPTT."""

import keras

from keras_rnn_lab.cells.gru_cell import GRUCell
from keras_rnn_lab.layers.bptt.gru import gru_recurrence
from keras_rnn_lab.layers.fast_rnn import FastRNN, activation_name
from keras_rnn_lab.layers.loop_choice import check_use_cudnn


@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class GRU(FastRNN, keras.layers.GRU):
    """Drop-in for `keras.layers.GRU` (and an instance of it); the step is
    `keras_rnn_lab.GRUCell`.

    Same arguments, properties and weights as the built-in (reset_after=True by
    default, bias (2, 3*units); use_cudnn; the legacy `implementation`), plus
    `update_convention="lecture"` for the lecture's
    h_t = (1 - z_t) h_{t-1} + z_t h~_t (see `convert_gru_update_convention`).
    cuDNN computes only Keras's convention, so a lecture-convention GRU has
    `use_cudnn=False` (and rejects `use_cudnn=True`): no dispatch, this layer's
    or `Bidirectional`'s fused one, can hand it to cuDNN.  Weight drop keeps it
    off cuDNN too: `recurrent_kernel_dropout` = p, in training W~ = W * M / (1 - p),
    M ~ Bernoulli(1 - p) of W's shape (units, 3*units), one M per batch.
    """

    cell_class = GRUCell
    cell_name = "gru_cell"
    has_cudnn = True

    def __init__(self, units, **kwargs):
        if kwargs.get("update_convention", "keras") == "lecture":
            if check_use_cudnn(kwargs.get("use_cudnn", "auto")) is True:
                raise ValueError(
                    "Argument `use_cudnn` must be 'auto' or False with update_convention='lecture' "
                    "(cuDNN computes only Keras's convention); received True."
                )
            kwargs["use_cudnn"] = False
        super().__init__(units, **kwargs)

    @property
    def update_convention(self):
        return self.cell.update_convention

    def recurrence(self, inputs, projection, initial_state, recurrent_mask, step_mask, training, recurrences=None):
        run = gru_recurrence if recurrences is None else recurrences.gru_recurrence
        h = run(
            inputs,
            projection,
            initial_state[0],
            self.cell.step_recurrent_kernel(training),  # W, or this batch's W~ (weight drop)
            self.cell.recurrent_bias(),
            activation_name(self.cell.activation),
            activation_name(self.cell.recurrent_activation),
            self.cell.reset_after,
            self.cell.update_convention,
            recurrent_mask=recurrent_mask,
            step_mask=step_mask,
            training=training,
            return_sequences=self.return_sequences,
        )
        # h: (time, batch, units) with return_sequences, else the last state.
        return h, [h[-1] if self.return_sequences else h]
