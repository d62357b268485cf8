"""Fast GRU layer: `keras.layers.RNN(GRUCell)` with hand-written BPTT."""

import keras

from keras_rnn_lab.bptt.gru import gru_recurrence
from keras_rnn_lab.fast_rnn import FastRNN, activation_name
from keras_rnn_lab.gru_cell import GRUCell


@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class GRU(FastRNN):
    """Drop-in for `keras.layers.GRU`; the step is `keras_rnn_lab.GRUCell`.

    Same arguments and weights as the built-in (reset_after=True by default,
    bias (2, 3*units)), plus `update_convention="lecture"` for the lecture's
    h_t = (1 - z_t) h_{t-1} + z_t h~_t (see `convert_gru_update_convention`).
    """

    cell_class = GRUCell

    @property
    def recurrent_activation(self):
        return self.cell.recurrent_activation

    @property
    def reset_after(self):
        return self.cell.reset_after

    def recurrence(self, inputs, projection, initial_state, recurrent_mask, step_mask, training):
        h = gru_recurrence(
            inputs,
            projection,
            initial_state[0],
            self.cell.recurrent_kernel,
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
