"""The LSTM as TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM op, while an export traces it.

TFLite has one builtin op for a whole LSTM sequence.  Its converter emits it
for a traced function it recognises as a Keras LSTM (the composite-function
pass, `PrepareCompositeFunctionsPass` / `ConvertKerasLSTMLayer` in
TensorFlow's tensorflow/compiler/mlir/lite): a tf.function whose attribute
`api_implements` starts with "lstm_", with `time_major` set, exactly six
arguments

    (inputs (T, B, F), init_h (B, U), init_c (B, U), kernel (F, 4U),
     recurrent_kernel (U, 4U), bias (4U,))      gate blocks in Keras's order i, f, C~, o

of static shape (but time), and five results of which only the first two
(the last output, the output sequence) are read.  Its body, the lecture's
equations here, is what TensorFlow runs; the converter replaces it.

Inside `fused_lstm()` our `LSTM` traces its inference loop that way wherever
the op computes what the layer does: tanh and sigmoid activations, no
return_state (the op gives no final C), not stateful, a static batch size.
Masks are rebuilt outside the op, which runs every step: they must be
right-padded (as for cuDNN), since a step after padding would run on.
Everything else keeps the while loop.  Two traps of the op, handled here:

* its initial states are *stateful operands*: the kernel writes the final
  state into them, so a constant zero state would carry one call's end into
  the next call.  The op gets private copies computed from the input
  (x[:, 0, :1] * 0 added, subtracted for C: the two must differ);
* the converter sets cell_clip 10 (Keras never clips): the export resets it
  to 0 in the file (`keras_rnn_lab.serving.tflite_export`).
"""

import uuid

import keras

from keras_rnn_lab._tracing_switch import TracingSwitch

_FUSED = TracingSwitch()


def fused_lstm():
    """Trace `keras_rnn_lab.LSTM` layers as TFLite's fused op inside the block."""
    return _FUSED.turned_on()


def why_not(layer, sequences, mask, training):
    """None when `layer` traces as the fused op now, else the reason."""
    if not _FUSED.is_on:
        return "not tracing for a fused TFLite file"
    if training:
        return "training"
    if mask is not None and layer.go_backwards:
        return "a reversed masked sequence starts with its padding"
    cell = layer.cell
    if cell.activation is not keras.activations.tanh or cell.recurrent_activation is not keras.activations.sigmoid:
        return "the op computes tanh and sigmoid only"
    if layer.return_state or layer.stateful:
        return "the op gives no final cell state"
    if sequences.shape[0] is None:
        return "the op needs a static batch size"
    return None


def _lstm_function(go_backwards):
    """A fresh tf.function the converter takes for a Keras LSTM (see the module docstring)."""
    import tensorflow as tf

    def lstm(inputs, init_h, init_c, kernel, recurrent_kernel, bias):
        if go_backwards:
            inputs = tf.reverse(inputs, [0])
        projected = tf.einsum("tbf,fg->tbg", inputs, kernel) + bias

        def step(carry, xp_t):
            h, c = carry
            i, f, candidate, o = tf.split(xp_t + tf.matmul(h, recurrent_kernel), 4, axis=1)
            c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(candidate)
            return tf.sigmoid(o) * tf.tanh(c), c

        hs, cs = tf.scan(step, projected, initializer=(init_h, init_c))
        return hs[-1], hs, hs[-1], cs[-1], tf.constant(0.0)

    attributes = {
        "api_implements": f"lstm_{uuid.uuid4()}",  # the prefix is what the converter looks for
        "api_preferred_device": "CPU",
        "time_major": True,  # time-major: the op steps the whole batch at once
        "go_backwards": bool(go_backwards),
    }
    return tf.function(lstm, autograph=False, experimental_attributes=attributes)


def fused_inner_loop(layer, sequences, initial_state, mask, default_state):
    """keras.layers.RNN.inner_loop's contract, (last_output, outputs, states),
    through the fused op; `mask` (batch, time) right-padded or None."""
    import tensorflow as tf

    cell = layer.cell
    bias = cell.bias if cell.use_bias else tf.zeros([4 * cell.units], sequences.dtype)
    init_h, init_c = (tf.convert_to_tensor(state) for state in initial_state)
    if default_state:  # (1, U) zeros broadcast by the probe: the file stays resizable to other batches
        init_h = init_c = tf.zeros([1, cell.units], sequences.dtype)
    probe = sequences[:, -1 if layer.go_backwards else 0, :1] * 0.0  # (B, 1): private, computed per call
    last, outputs, _, _, _ = _lstm_function(layer.go_backwards)(
        tf.transpose(sequences, [1, 0, 2]),
        init_h + probe,
        init_c - probe,
        tf.convert_to_tensor(cell.kernel),  # tensors: variables as arguments crash the converter
        tf.convert_to_tensor(cell.recurrent_kernel),
        tf.convert_to_tensor(bias),
    )
    outputs = tf.transpose(outputs, [1, 0, 2])  # (B, T, U)
    if mask is not None:
        # Keras's masked outputs from the unmasked run: the output at step
        # length-1 (h0 for an empty row), repeated (or zeros) after it.
        kept = tf.cast(mask, outputs.dtype)
        lengths = tf.cast(tf.reduce_sum(kept, axis=1), tf.int32)
        pick = tf.one_hot(lengths - 1, tf.shape(outputs)[1], dtype=outputs.dtype)  # zeros when length 0
        last = tf.reduce_sum(outputs * pick[:, :, None], axis=1)
        last += (init_h + probe) * (1.0 - tf.reduce_sum(pick, axis=1, keepdims=True))
        if layer.return_sequences:
            kept = kept[:, :, None]
            outputs = outputs * kept if layer.zero_output_for_mask else outputs * kept + last[:, None] * (1 - kept)
    return last, outputs, [last, last * 0.0]  # the final C is unavailable (why_not refuses return_state)
