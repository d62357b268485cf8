"""Fast SimpleRNN layer: `keras.layers.RNN(SimpleRNNCell)` with hand-written BPTT."""

import keras

from keras_rnn_lab.cells.simple_rnn_cell import SimpleRNNCell
from keras_rnn_lab.layers.bptt.simple_rnn import simple_rnn_recurrence
from keras_rnn_lab.layers.fast_rnn import FastRNN, activation_name


@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class SimpleRNN(FastRNN, keras.layers.SimpleRNN):
    """Drop-in for `keras.layers.SimpleRNN` (and an instance of it):
    s_t = f(x_t U + s_{t-1} W + b).

    Same arguments (units, activation, use_bias, initializers, regularizers,
    constraints, dropout, recurrent_dropout, seed, return_sequences,
    return_state, go_backwards, stateful, unroll) and weights as the built-in;
    see `keras_rnn_lab.SimpleRNNCell` for the step and `FastRNN` for the speed.
    Plus weight drop, `recurrent_kernel_dropout` = p: in training W~ = W * M / (1 - p),
    M ~ Bernoulli(1 - p) of W's shape, one M per batch shared by every step.
    """

    cell_class = SimpleRNNCell
    cell_name = "simple_rnn_cell"

    def recurrence(self, inputs, projection, initial_state, recurrent_mask, step_mask, training, recurrences=None):
        run = simple_rnn_recurrence if recurrences is None else recurrences.simple_rnn_recurrence
        h = run(
            inputs,
            projection,
            initial_state[0],
            self.cell.step_recurrent_kernel(training),  # W, or this batch's W~ (weight drop)
            activation_name(self.cell.activation),
            recurrent_mask=recurrent_mask,
            step_mask=step_mask,
            training=training,
            return_sequences=self.return_sequences,
        )
        # h: (time, batch, units) with return_sequences, else the last state.
        return h, [h[-1] if self.return_sequences else h]
