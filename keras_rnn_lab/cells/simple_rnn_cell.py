"""The lecture's vanilla recurrent cell."""

import keras

from keras_rnn_lab.cells.cell_base import RecurrentCell


@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class SimpleRNNCell(RecurrentCell):
    """One step of a vanilla RNN, the lecture's first recurrent network.

        s_t = f(x_t U + s_{t-1} W + b)

    x_t is the step input (batch, features), s_{t-1} the previous state
    (batch, units), U = `kernel`, W = `recurrent_kernel`, b = `bias`, and f the
    `activation`: tanh by default, ReLU (`activation="relu"`) or any Keras
    activation.  The output is the new state s_t.

    With `dropout`/`recurrent_dropout` and `training=True`, x_t and s_{t-1} are
    multiplied by masks drawn once per batch (the same at every step) before the
    products with U and W.  With `recurrent_kernel_dropout` = p (weight drop) and
    `training=True`, W is W~ = W * M / (1 - p), M ~ Bernoulli(1 - p) of W's shape,
    drawn once per batch; inference uses W.  Arguments and weights match
    `keras.layers.SimpleRNNCell` (which has no weight drop).
    """

    gates = 1

    def call(self, sequence, states, training=False):
        # `sequence` is one step x_t (batch, features); Keras's SimpleRNNCell names it so.
        s_prev = states[0] if isinstance(states, (list, tuple)) else states
        x, s_prev_dropped = self.masked_step_inputs(sequence, s_prev, training)
        pre_activation = self.project_inputs(x) + keras.ops.matmul(s_prev_dropped, self.step_recurrent_kernel(training))
        s = self.activation(pre_activation)
        return s, [s] if isinstance(states, (list, tuple)) else s
