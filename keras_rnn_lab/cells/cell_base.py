"""What the three cells share: Keras's constructor arguments and weight layout.

Every cell owns

    kernel            (features, gates * units)   U in the lecture: x_t U
    recurrent_kernel  (units, gates * units)      W in the lecture: s_{t-1} W
    bias              (gates * units,) or (2, gates * units)

with the gates side by side in Keras's order, so
`ours.set_weights(builtin.get_weights())` copies a built-in cell exactly.

Beyond Keras's arguments, `recurrent_kernel_dropout` = p in [0, 1) is weight
drop (DropConnect on W, as in AWD-LSTM, Merity et al. 2017):

    training:   W~ = W * M / (1 - p),  M ~ Bernoulli(1 - p) of W's shape,
                drawn once per batch (per layer call), the same at every step
    inference:  W~ = W

and every step computes s_{t-1} W~ in place of s_{t-1} W.  Absent from a
config (an older file, a built-in's), it is 0: no weight drop.
"""

import keras

from keras_rnn_lab import _validation
from keras_rnn_lab.cells.dropout_masks import DropoutMasks


class RecurrentCell(DropoutMasks, keras.layers.Layer):
    """Base class: arguments, weights, initial state, dropout and config.

    Subclasses set `gates` (how many blocks of `units` columns the kernels hold)
    and implement `call(inputs, states, training=False)`.
    """

    gates = 1
    # Keras 2's `implementation` (1 or 2: how the gate products were batched)
    # is accepted by Keras 3's LSTMCell and GRUCell, kept as an attribute and
    # left out of the config; it changes nothing.  SimpleRNNCell never took it.
    accepts_implementation = False

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        *,  # our own from here: keyword-only, so Keras's positional order holds
        recurrent_kernel_dropout=0.0,
        **kwargs,
    ):
        implementation = kwargs.pop("implementation", 2) if self.accepts_implementation else None
        super().__init__(**kwargs)
        self.units = _validation.check_units(units)
        self.activation = _validation.get_activation("activation", activation)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = _validation.check_rate("dropout", dropout)
        self.recurrent_dropout = _validation.check_rate("recurrent_dropout", recurrent_dropout)
        self.recurrent_kernel_dropout = _validation.check_rate("recurrent_kernel_dropout", recurrent_kernel_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        if self.accepts_implementation:
            # As Keras: recurrent dropout forces the per-gate variant, 1.
            self.implementation = 1 if self.recurrent_dropout else implementation
            if self.implementation == 1:
                self.dropout_mask_count = self.gates  # Keras's attribute for that variant

    # --- the Keras cell contract -------------------------------------------------
    @property
    def state_size(self):
        return self.units

    @property
    def output_size(self):
        return self.units

    def get_initial_state(self, batch_size=None):
        return [keras.ops.zeros((batch_size, d), dtype=self.compute_dtype) for d in self._state_sizes()]

    def _state_sizes(self):
        size = self.state_size
        return list(size) if isinstance(size, (list, tuple)) else [size]

    # --- weights -------------------------------------------------------------------
    def bias_shape(self):
        return (self.gates * self.units,)

    def make_bias_initializer(self):
        """Hook for LSTM's unit_forget_bias; the plain initializer otherwise."""
        return self.bias_initializer

    def build(self, input_shape):
        _validation.check_step_input_shape(type(self).__name__, tuple(input_shape))
        width = self.gates * self.units
        self.kernel = self.add_weight(
            shape=(input_shape[-1], width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(
                shape=self.bias_shape(),
                name="bias",
                initializer=self.make_bias_initializer(),
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def input_projection(self, gate_order=None):
        """(U, b) of x U + b, gate blocks optionally permuted to `gate_order` (the
        fast layers compute in another order than Keras stores); b may be None."""
        kernel, input_bias = self.kernel, self.input_bias()
        if gate_order is not None:
            kernel = self.reorder_gates(kernel, gate_order)
            input_bias = None if input_bias is None else self.reorder_gates(input_bias, gate_order)
        return kernel, input_bias

    def project_inputs(self, inputs, gate_order=None):
        """x U + b: the part of every gate that does not depend on the past."""
        _validation.check_feature_size(type(self).__name__, inputs, self.kernel)
        kernel, input_bias = self.input_projection(gate_order)
        projected = keras.ops.matmul(inputs, kernel)
        if input_bias is not None:
            projected = projected + input_bias
        return projected

    def reorder_gates(self, weight, gate_order):
        """The gate blocks (`units` wide, last axis) of `weight` in `gate_order`."""
        blocks = [weight[..., g * self.units : (g + 1) * self.units] for g in gate_order]
        return keras.ops.concatenate(blocks, axis=-1)

    def input_bias(self):
        return self.bias

    # --- serialization -----------------------------------------------------------
    def get_config(self):
        ser = keras.saving.serialize_keras_object
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": ser(self.kernel_initializer),
            "recurrent_initializer": ser(self.recurrent_initializer),
            "bias_initializer": ser(self.bias_initializer),
            "kernel_regularizer": ser(self.kernel_regularizer),
            "recurrent_regularizer": ser(self.recurrent_regularizer),
            "bias_regularizer": ser(self.bias_regularizer),
            "kernel_constraint": ser(self.kernel_constraint),
            "recurrent_constraint": ser(self.recurrent_constraint),
            "bias_constraint": ser(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "recurrent_kernel_dropout": self.recurrent_kernel_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
