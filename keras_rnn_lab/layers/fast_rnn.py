"""FastRNN: `keras.layers.RNN(cell)` with the time loop replaced by hand-written BPTT.

The layer *is* a `keras.layers.RNN` over one of our cells, and an instance of
the built-in it replaces (`keras_rnn_lab.LSTM` subclasses `keras.layers.LSTM`,
so `isinstance` checks, `Bidirectional`'s fused dispatch and the built-in's
properties all hold): constructor, state handling (initial_state, stateful,
return_state), masking, Bidirectional and serialization come from Keras.  Only
`inner_loop` changes, and only where `loop_choice.choose_loop` says our loop is
the fast one (on a GPU the built-in's cuDNN kernel is):

    1. dropout on x_t (constant across time) is applied to the whole sequence;
    2. xp = x U + b for all steps in one matmul before the loop when training
       (inside the loop, step by step, for inference: faster there);
    3. the recurrence runs in `keras_rnn_lab.layers.bptt`, whose custom gradient keeps one
       matmul per step in each direction; or, where they could be built and
       cover the call (`layers.compiled.why_not`), the same loops as two
       compiled ops (`layers.compiled`), never in an exported graph.

Weight drop (`recurrent_kernel_dropout`, see `RecurrentCell`) hands the
recurrence this batch's W~ = W * M / (1 - p), formed once before the loop
from the cell's cached M (the mask Keras's own loop over the cell uses), so
autodiff through the product gives dW = dW~ * M / (1 - p).  cuDNN cannot drop
weights: such a layer has use_cudnn=False (and refuses use_cudnn=True), so
neither `choose_loop` nor `Bidirectional`'s fused dispatch hands it to cuDNN.

Where the fast path cannot apply (another backend, `unroll=True`, an activation
the hand-written derivative does not cover) the layer falls back to
`keras.layers.RNN`'s own loop and autodiff, which computes the same function.
"""

import keras

from keras_rnn_lab import _validation
from keras_rnn_lab.layers import compiled, loop_choice
from keras_rnn_lab.layers.bptt import loop
from keras_rnn_lab.layers.compiled import recurrences as compiled_recurrences

# Arguments that belong to the layer; everything else configures the cell.
_LAYER_ARGUMENTS = (
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
    "name",
    "dtype",
    "trainable",
    "activity_regularizer",
    "autocast",
    "input_shape",
)
# Layer-level entries of a cell's config that the layer's own config already holds.
_CELL_ONLY_SKIPPED = ("name", "trainable", "dtype")


class FastRNN(keras.layers.RNN):
    """Base of `SimpleRNN`, `LSTM` and `GRU`.

    A subclass lists the built-in it replaces second, `class LSTM(FastRNN,
    keras.layers.LSTM)`, and sets `cell_class` and `cell_name` (Keras's name for
    the cell).  `has_cudnn` layers take Keras's `use_cudnn` ("auto", True, False).
    After a call, `last_loop` says which loop ran and why (see `loop_choice`).
    """

    cell_class = None
    cell_name = None
    has_cudnn = False
    # Order of the gate blocks the bptt recurrence expects; None for Keras's own.
    gate_order = None

    def __init__(self, units, **kwargs):
        use_cudnn = loop_choice.check_use_cudnn(kwargs.pop("use_cudnn", "auto")) if self.has_cudnn else None
        _check_time_major(kwargs.pop("time_major", False))
        layer_kwargs = {k: kwargs.pop(k) for k in _LAYER_ARGUMENTS if k in kwargs}
        cell = self.cell_class(
            units,
            dtype=layer_kwargs.get("dtype"),
            trainable=layer_kwargs.get("trainable", True),
            name=self.cell_name,
            **kwargs,
        )
        # keras.layers.RNN's constructor, not the built-in's: that one would
        # build Keras's cell instead of ours.
        keras.layers.RNN.__init__(self, cell, **layer_kwargs)
        self.last_loop = None
        if self.has_cudnn and cell.recurrent_kernel_dropout:
            if use_cudnn is True:
                raise ValueError(
                    "Argument `use_cudnn` must be 'auto' or False with recurrent_kernel_dropout > 0 "
                    f"(cuDNN cannot drop weights of the recurrent kernel); received True with "
                    f"recurrent_kernel_dropout={cell.recurrent_kernel_dropout}."
                )
            use_cudnn = False
        if self.has_cudnn:
            # Kept as given and not serialized, as keras.layers.LSTM/GRU do.
            self.use_cudnn = use_cudnn
            if use_cudnn is not False and self._runs_cudnn_on_tensorflow():
                self.supports_jit = False  # as the built-in: cuDNN ops are not XLA ops

    def _runs_cudnn_on_tensorflow(self):
        if keras.backend.backend() != "tensorflow" or loop_choice.cudnn_arguments_ok(self) is not None:
            return False
        return bool(loop_choice.visible_gpus())

    @property
    def recurrent_kernel_dropout(self):
        """Weight drop's rate p on W (0: none), as the built-ins expose `recurrent_dropout`."""
        return self.cell.recurrent_kernel_dropout

    # --- the fast path ---------------------------------------------------------
    def fast_path_available(self):
        """Why not, as a string, or None when the hand-written BPTT applies."""
        if keras.backend.backend() != "tensorflow":
            return "the hand-written BPTT is TensorFlow code"
        if self.unroll:
            return "unroll=True asks for Keras's unrolled loop"
        for name in self._activation_names():
            if not loop.supports(name):
                return f"no hand-written derivative for activation {name!r}"
        return None

    def _activation_names(self):
        functions = [self.cell.activation, getattr(self.cell, "recurrent_activation", None)]
        return [activation_name(fn) for fn in functions if fn is not None]

    def build(self, sequences_shape, initial_state_shape=None):
        if len(sequences_shape) != 3:
            raise ValueError(
                f"{type(self).__name__} expects sequences of rank 3 (batch, time, features); "
                f"received shape {tuple(sequences_shape)}."
            )
        super().build(sequences_shape, initial_state_shape)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        sequences = _floating(sequences, self.compute_dtype)
        mask = _validated_mask(type(self).__name__, mask, sequences)
        self.cell.drawing_for_training = bool(training)  # no weight-drop draw in an inference graph
        try:
            return super().call(sequences, initial_state=initial_state, mask=mask, training=training)
        finally:
            # Keras resets the masks only for cells it recognises; be sure a mask
            # never outlives its batch (W's weight-drop mask goes with the recurrent one).
            self.cell.reset_dropout_mask()
            self.cell.reset_recurrent_dropout_mask()
            self.cell.drawing_for_training = True

    def inner_loop(self, sequences, initial_state, mask, training=False):
        self.last_loop = loop_choice.choose_loop(self)
        if self.last_loop.path in ("cudnn", "builtin"):
            # The built-in's own inner loop (the next class in the MRO): its
            # cuDNN call, fed our cell's weights, which have its layout.
            return super(FastRNN, self).inner_loop(sequences, initial_state, mask=mask, training=training)
        if self.last_loop.path == "keras":
            return keras.layers.RNN.inner_loop(self, sequences, initial_state, mask=mask, training=training)
        return self.fast_inner_loop(sequences, initial_state, mask, training)

    def fast_inner_loop(self, sequences, initial_state, mask, training=False):
        """The hand-written BPTT loop; `inner_loop`'s contract."""
        import tensorflow as tf  # the fast path is TensorFlow-only (choose_loop checks)

        if isinstance(mask, (list, tuple)):
            mask = mask[0]
        cell = self.cell
        if training and cell.dropout > 0:
            # (batch, features) mask broadcast over time: the same units every step.
            sequences = sequences * cell.get_dropout_mask(sequences[:, 0, :])[:, tf.newaxis, :]
        recurrent_mask = None
        if training and cell.recurrent_dropout > 0:
            recurrent_mask = cell.get_recurrent_dropout_mask(initial_state[0])
        _validation.check_feature_size(type(self).__name__, sequences, cell.kernel)
        inputs = tf.transpose(sequences, [1, 0, 2])  # (time, batch, features)
        # (U, b) with the gate blocks in the order `recurrence` computes them.
        projection = tuple(
            None if p is None else tf.convert_to_tensor(p) for p in cell.input_projection(self.gate_order)
        )
        step_mask = None
        if mask is not None:
            # Cast before adding the axis: a StridedSlice of a boolean tensor is not
            # a TFLite builtin op (the converter would demand the Flex delegate).
            step_mask = tf.expand_dims(tf.cast(tf.transpose(mask), inputs.dtype), -1)  # (time, batch, 1)
        if self.go_backwards:
            inputs = tf.reverse(inputs, [0])
            step_mask = None if step_mask is None else tf.reverse(step_mask, [0])

        # Stateful layers pass their state variables: read them here, so the custom
        # gradient sees plain tensors (it refuses functions that read variables).
        initial_state = [tf.convert_to_tensor(state) for state in initial_state]
        kernel_blocker = compiled.why_not(self, inputs.dtype)
        where = "the compiled kernels" if kernel_blocker is None else f"TensorFlow ops, {kernel_blocker}"
        self.last_loop = self.last_loop._replace(reason=f"{self.last_loop.reason}, on {where}")
        h_out, final_states = self.recurrence(
            inputs,
            projection,
            initial_state,
            recurrent_mask,
            step_mask,
            training=bool(training),
            recurrences=compiled_recurrences if kernel_blocker is None else None,
        )
        # keras.layers.RNN's masked output: zero where masked, or else the last
        # unmasked output (zero before the first one), i.e. h_t times
        # "some step <= t was unmasked".
        if self.return_sequences:
            outputs = h_out  # (time, batch, units)
            if step_mask is not None:
                seen = (
                    step_mask if self.zero_output_for_mask else tf.cast(tf.cumsum(step_mask, axis=0) > 0, h_out.dtype)
                )
                outputs = outputs * seen
            last_output = outputs[-1]
            outputs = tf.transpose(outputs, [1, 0, 2])
        else:
            last_output = h_out  # (batch, units)
            if step_mask is not None:
                seen = (
                    step_mask[-1]
                    if self.zero_output_for_mask
                    else tf.cast(tf.reduce_max(step_mask, axis=0) > 0, h_out.dtype)
                )
                last_output = last_output * seen
            outputs = last_output[:, tf.newaxis]
        return last_output, outputs, final_states

    def recurrence(self, inputs, projection, initial_state, recurrent_mask, step_mask, training, recurrences=None):
        """Subclasses: run the bptt recurrence; return (h, [final states]).

        `recurrences` is `layers.compiled.recurrences` where the compiled
        kernels run this call, else None (the `layers.bptt` loop of TensorFlow ops).

        h is the state sequence (time, batch, units) with `return_sequences`,
        else the last state (batch, units).  `training` picks the hand-written
        backward pass (True) or the plain forward loop that saves nothing for
        it (False, inference).
        """
        raise NotImplementedError

    # --- serialization (the built-in's properties come from its class) ---------
    def get_config(self):
        # keras.layers.RNN's, not the built-in's: ours lists our cell's arguments.
        config = keras.layers.RNN.get_config(self)
        del config["cell"]
        cell_config = {k: v for k, v in self.cell.get_config().items() if k not in _CELL_ONLY_SKIPPED}
        # Keras's layers list it too, so configs interchange both ways.
        activity = keras.regularizers.serialize(self.activity_regularizer)
        return {**config, **cell_config, "activity_regularizer": activity}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def activation_name(function):
    """Keras's name for an activation function ('tanh', 'relu', ...), or None
    for a custom callable, which the hand-written BPTT does not cover."""
    try:
        name = keras.activations.serialize(function)
    except (ValueError, TypeError):
        return None
    return name if isinstance(name, str) else None


def _check_time_major(time_major):
    """Keras 2 configs carry `time_major` (keras.layers no longer accepts it, so
    the built-in cannot load them); False is Keras 3's only layout."""
    if time_major is not False:
        raise ValueError(
            f"Argument `time_major` must be False (inputs are (batch, time, features)); received "
            f"{time_major!r}. Transpose time-major inputs with keras.ops.transpose(x, (1, 0, 2))."
        )


def _floating(sequences, compute_dtype):
    """Integer or boolean sequences cast to the layer's compute dtype, as the
    built-in's matmul promotes them (keras.layers.LSTM accepts integer input)."""
    sequences = keras.ops.convert_to_tensor(sequences)
    if "float" in keras.backend.standardize_dtype(sequences.dtype):
        return sequences
    return keras.ops.cast(sequences, compute_dtype)


def _validated_mask(layer_name, mask, sequences):
    """A mask is boolean-like (batch, time) matching the sequences."""
    if mask is None:
        return None
    if isinstance(mask, (list, tuple)):
        mask = mask[0]
        if mask is None:
            return None
    mask = keras.ops.convert_to_tensor(mask)
    if mask.dtype not in ("bool", "int32", "int64", "uint8", "int8"):
        raise TypeError(f"{layer_name} expects a boolean `mask` of shape (batch, time); received dtype {mask.dtype}.")
    expected = tuple(sequences.shape[:2])
    received = tuple(mask.shape)
    shape_ok = len(received) == 2 and all(e is None or r is None or e == r for e, r in zip(expected, received))
    if not shape_ok:
        raise ValueError(f"{layer_name} expects `mask` of shape (batch, time) = {expected}; received shape {received}.")
    return keras.ops.cast(mask, "bool")
