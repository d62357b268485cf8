"""The lecture's long short-term memory cell."""

import keras

from keras_rnn_lab import _validation
from keras_rnn_lab.cells.cell_base import RecurrentCell


@keras.saving.register_keras_serializable(package="keras_rnn_lab")
class LSTMCell(RecurrentCell):
    """One step of an LSTM, gates in Keras's order i, f, C~, o.

        i_t  = sigma(x_t U_i + h_{t-1} W_i + b_i)       input gate
        f_t  = sigma(x_t U_f + h_{t-1} W_f + b_f)       forget gate
        C~_t = tanh(x_t U_c + h_{t-1} W_c + b_c)        candidate cell state
        C_t  = f_t * C_{t-1} + i_t * C~_t               additive memory
        o_t  = sigma(x_t U_o + h_{t-1} W_o + b_o)       output gate
        h_t  = o_t * tanh(C_t)

    sigma is `recurrent_activation` (sigmoid) and tanh is `activation`.  The
    state is [h_t, C_t]; the output is h_t.  U = `kernel` (features, 4*units),
    W = `recurrent_kernel` (units, 4*units), b = `bias` (4*units,), the four
    blocks side by side as in `keras.layers.LSTMCell`.  `unit_forget_bias=True`
    starts b_f at 1 so the memory is kept at first (Jozefowicz et al., 2015).

    Weight drop, `recurrent_kernel_dropout` = p: when training, every W_* above
    is a block of W~ = W * M / (1 - p), M ~ Bernoulli(1 - p) of W's shape
    (units, 4*units), drawn once per batch; inference uses W.
    """

    gates = 4
    accepts_implementation = True

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", *, unit_forget_bias=True, **kwargs):
        # Keyword-only after the activations: Keras's 4th positional is use_bias.
        super().__init__(units, activation=activation, **kwargs)
        self.recurrent_activation = _validation.get_activation("recurrent_activation", recurrent_activation)
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def make_bias_initializer(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units

        def forget_gate_at_one(_, *args, **kwargs):
            return keras.ops.concatenate(
                [
                    base((units,), *args, **kwargs),
                    keras.initializers.Ones()((units,), *args, **kwargs),
                    base((2 * units,), *args, **kwargs),
                ]
            )

        return forget_gate_at_one

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]
        x, h_prev_dropped = self.masked_step_inputs(inputs, h_prev, training)
        z = self.project_inputs(x) + keras.ops.matmul(h_prev_dropped, self.step_recurrent_kernel(training))
        z_i, z_f, z_c, z_o = keras.ops.split(z, 4, axis=-1)
        i = self.recurrent_activation(z_i)
        f = self.recurrent_activation(z_f)
        c_candidate = self.activation(z_c)
        o = self.recurrent_activation(z_o)
        c = f * c_prev + i * c_candidate
        h = o * self.activation(c)
        return h, [h, c]

    def get_config(self):
        return {
            **super().get_config(),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
        }
