"""The three recurrences on the compiled kernels, with the signatures of `layers.bptt`'s.

`KerasRnnLabRecurrence` runs the whole forward loop in one op, and in training
saves the gate activations; its registered gradient runs `KerasRnnLabRecurrenceGrad`,
the lecture's BPTT backwards over them (the same equations as `layers.bptt`, whose docstrings
write them out) and returns dxp and the recurrent pre-activations' gradient
d_rec per step, from which the weight gradients are two large ops here:

    dW  = sum_t h_in_{t-1}^T d_rec_t   (h_in = h_{t-1} * recurrent_mask)
    db' = sum_t sum_batch d_rec_t      (GRU's recurrent bias)

The op projects the input itself, a step at a time (xp_t = x_t U + b, in the
same GEMM as h_{t-1} W for SimpleRNN and LSTM): no (time, batch, gates*units)
sequence is written and read back.  So the gradient adds the projection's
three, each one large matmul over all steps:

    dx = dxp U^T      dU = sum_t x_t^T dxp_t      db = sum_t sum_batch dxp_t
"""

import tensorflow as tf

from keras_rnn_lab.layers.bptt import loop
from keras_rnn_lab.layers.compiled import build

_ATTRIBUTES = ("cell", "activation", "recurrent_activation", "lecture_update")


def _empty():
    return tf.zeros([0], tf.float32)


def _or_empty(tensor):
    return _empty() if tensor is None else tensor


@tf.RegisterGradient("KerasRnnLabRecurrence")
def _recurrence_gradient(op, dh, dc, _):
    """The op's gradient: BPTT over its saved gates (recomputed first when the
    op ran for inference, `save_gates=False`, and something differentiates it)."""
    ops, _ = build.load()
    x, h0, c0, w, bias, r, m, kernel, input_bias = op.inputs
    attrs = {name: op.get_attr(name) for name in _ATTRIBUTES}
    attrs.update({name: value.decode() for name, value in attrs.items() if isinstance(value, bytes)})
    h, c, gates = op.outputs
    if not op.get_attr("save_gates"):
        h, c, gates = ops.keras_rnn_lab_recurrence(
            x, h0, c0, w, bias, r, m, kernel, input_bias, save_gates=True, **attrs
        )
    dh = loop.or_zeros(dh, h)
    dc = _empty() if attrs["cell"] != "lstm" else loop.or_zeros(dc, c)
    dxp, d_rec, dh0, dc0 = ops.keras_rnn_lab_recurrence_grad(w, r, m, h0, c0, h, c, gates, dh, dc, **attrs)
    d_rec = d_rec if attrs["cell"] == "gru" else dxp
    h_in = tf.concat([h0[tf.newaxis], h[:-1]], axis=0)
    has_r = r.shape.num_elements() != 0
    if has_r:
        h_in = h_in * r
    units, width = tf.shape(w)[0], tf.shape(w)[1]
    dw = tf.matmul(tf.reshape(h_in, [-1, units]), tf.reshape(d_rec, [-1, width]), transpose_a=True)
    has_bias = bias.shape.num_elements() != 0
    db = tf.reduce_sum(d_rec, [0, 1]) if has_bias else None
    dc0 = dc0 if attrs["cell"] == "lstm" else None
    if kernel.shape.num_elements() == 0:  # x was projected before the op: its gradient is dxp
        return [dxp, dh0, dc0, dw, db, None, None, None, None]
    dxp_2d = tf.reshape(dxp, [-1, width])
    dx = tf.reshape(tf.matmul(dxp_2d, kernel, transpose_b=True), tf.shape(x))
    dkernel = loop.summed_outer_product(x, dxp)
    d_input_bias = loop.column_sums(dxp) if input_bias.shape.num_elements() != 0 else None
    return [dx, dh0, dc0, dw, db, None, None, dkernel, d_input_bias]


def _run(cell, inputs, projection, h0, c0, w, bias, r, m, activation, recurrent_activation, lecture_update, training):
    """(h (time, batch, units), C_T or None); differentiable (`_recurrence_gradient`).

    inputs (time, batch, features) and projection (U, b or None), which the op
    applies a step at a time (`projects_in_op`; else one matmul before it).
    training: save the gates for the backward pass (False: inference, saves nothing)."""
    ops, _ = build.load()
    kernel, input_bias = projection
    if projects_in_op(inputs.shape[-1], w.shape[0]):
        x, kernel, input_bias = inputs, kernel, _or_empty(input_bias)
    else:
        x, kernel, input_bias = loop.project_all(inputs, kernel, input_bias), _empty(), _empty()
    h, c, _ = ops.keras_rnn_lab_recurrence(
        x,
        h0,
        _or_empty(c0),
        w,
        _or_empty(bias),
        _or_empty(r),
        _or_empty(m),
        kernel,
        input_bias,
        cell=cell,
        activation=activation,
        recurrent_activation=recurrent_activation,
        lecture_update=lecture_update,
        save_gates=training,
    )
    return h, (c[-1] if c0 is not None else None)


def projects_in_op(features, units):
    """Whether the op projects the input itself (else TensorFlow's matmul before it).

    In the op, writing and re-reading the projected sequence goes, and the
    projection runs on packed_gemm.h (TensorFlow's own matmul measured 27-40
    GFLOP/s on two cores at these shapes, 2026-12-02): 1.1-1.4x faster
    inference at units 64-512.  But under 128 units the op runs on one thread
    (`Parts` in recurrence_kernels.cc), and an input wider than the state then
    made the op's projection the slower one (0.85x at 256 features, 32 units).
    """
    return units >= 128 or features <= units


def simple_rnn_recurrence(
    inputs,
    projection,
    initial_state,
    recurrent_kernel,
    activation,
    recurrent_mask=None,
    step_mask=None,
    training=True,
    return_sequences=True,
):
    """`layers.bptt.simple_rnn.simple_rnn_recurrence` on the compiled kernel."""
    h, _ = _run(
        "simple_rnn",
        inputs,
        projection,
        initial_state,
        None,
        tf.convert_to_tensor(recurrent_kernel),
        None,
        recurrent_mask,
        step_mask,
        activation,
        activation,
        False,
        training,
    )
    return h if return_sequences else h[-1]


def lstm_recurrence(
    inputs,
    projection,
    initial_h,
    initial_c,
    recurrent_kernel,
    activation,
    recurrent_activation,
    recurrent_mask=None,
    step_mask=None,
    training=True,
    return_sequences=True,
):
    """`layers.bptt.lstm.lstm_recurrence` on the compiled kernel (gates in COMPUTE_ORDER)."""
    h, c_last = _run(
        "lstm",
        inputs,
        projection,
        initial_h,
        initial_c,
        tf.convert_to_tensor(recurrent_kernel),
        None,
        recurrent_mask,
        step_mask,
        activation,
        recurrent_activation,
        False,
        training,
    )
    return (h if return_sequences else h[-1]), c_last


def gru_recurrence(
    inputs,
    projection,
    initial_state,
    recurrent_kernel,
    recurrent_bias,
    activation,
    recurrent_activation,
    reset_after,
    update_convention,
    recurrent_mask=None,
    step_mask=None,
    training=True,
    return_sequences=True,
):
    """`layers.bptt.gru.gru_recurrence` on the compiled kernel (reset_after=True only: `why_not`)."""
    bias = None if recurrent_bias is None else tf.convert_to_tensor(recurrent_bias)
    h, _ = _run(
        "gru",
        inputs,
        projection,
        initial_state,
        None,
        tf.convert_to_tensor(recurrent_kernel),
        bias,
        recurrent_mask,
        step_mask,
        activation,
        recurrent_activation,
        update_convention == "lecture",
        training,
    )
    return h if return_sequences else h[-1]
