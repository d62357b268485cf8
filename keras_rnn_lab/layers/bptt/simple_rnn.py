"""BPTT for s_t = f(xp_t + s_{t-1} W), with optional step mask and recurrent dropout."""

import tensorflow as tf

from keras_rnn_lab.layers.bptt import loop


def _forward_step(w, activation, r, rows):
    recurrent_product = loop.two_core_matmul(w, rows)

    def step(t, carry, xp_t, *m_t):
        (s_prev,) = carry
        s_in = s_prev if r is None else s_prev * r
        s = loop.activate(activation, xp_t + recurrent_product(s_in))
        if m_t:
            s = tf.where(m_t[0] > 0, s, s_prev)
        return (s,), (s,)

    return step


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
    """Run the recurrence; returns the states (time, batch, units), or only the
    last one (batch, units) when `return_sequences` is False.

    inputs: raw inputs x (time, batch, features); projection: (U, b) of the
    input projection, b possibly None.  Inference projects x_t U + b inside the
    loop (`loop.projecting`), training once before it (`loop.project_all`), so
    the recurrence below sees xp_t = x_t U + b, (batch, units); initial_state: (batch, units);
    activation: a Keras activation name that `loop.supports`; recurrent_mask:
    (batch, units) dropout mask on s_{t-1} or None; step_mask: (time, batch, 1)
    float, 0 where a step is skipped (the state is carried over).
    training: False runs the plain forward loop (autodiff still works through
    it); True attaches the hand-written backward pass below.

    Backward, with ds_t the total gradient reaching s_t:
        da_t      = m_t * ds_t * f'(a_t)           (f' from s_t = f(a_t))
        ds_{t-1}  = (1 - m_t) * ds_t + (da_t W^T) * recurrent_mask
        dW        = sum_t (s_{t-1} * recurrent_mask)^T da_t
    dW is accumulated step by step beside the ds chain: measured 10-15%
    faster than stacking every state for one large matmul after the loop (the
    stacks are full copies, and the chain leaves the second core idle).
    """
    extras = [t for t in (recurrent_mask, step_mask) if t is not None]
    length = inputs.shape[0] or tf.shape(inputs)[0]
    # A read of the variable, so a custom gradient sees a plain tensor input.
    w = tf.convert_to_tensor(recurrent_kernel)

    if not training:
        step = _forward_step(w, activation, recurrent_mask, initial_state.shape[0])
        step = loop.projecting(step, *projection)
        sequences = [inputs] + ([step_mask] if step_mask is not None else [])
        (last,), kept = loop.time_loop(step, length, (initial_state,), sequences, int(return_sequences), inputs.dtype)
        return kept[0].stack() if return_sequences else last

    @tf.custom_gradient
    def recurrence(xp, s0, w, *extras):
        r = extras[0] if recurrent_mask is not None else None
        m = extras[-1] if step_mask is not None else None
        sequences = [xp] + ([m] if m is not None else [])
        forward_step = _forward_step(w, activation, r, s0.shape[0])

        def saving_step(t, carry, *inputs):
            # Keeps s_{t-1} (for dW) and, when it is an output, s_t.
            (s,), _ = forward_step(t, carry, *inputs)
            return (s,), (carry[0], s)

        keep = 2 if return_sequences else 1
        (last,), saved = loop.time_loop(saving_step, length, (s0,), sequences, keep, xp.dtype)
        previous_states = saved[0]

        def grad(d_out):
            back_product = loop.two_core_matmul(tf.transpose(w), s0.shape[0])  # da W^T

            # The carry holds s_t, read one step earlier as that step's s_{t-1},
            # so each state is read once and nothing is stacked for dW.
            def backward_step(t, carry, s_prev, *inputs):
                ds_next, s_t, dw = carry
                ds = ds_next + inputs[0] if return_sequences else ds_next
                m_t = inputs[-1:] if m is not None else ()
                da = loop.times_derivative(activation, ds if not m_t else ds * m_t[0], s_t)
                ds_prev = back_product(da)
                s_in = s_prev if r is None else s_prev * r
                dw = dw + tf.matmul(s_in, da, transpose_a=True)
                if r is not None:
                    ds_prev = ds_prev * r
                if m_t:
                    ds_prev = ds_prev + ds * (1.0 - m_t[0])
                return (ds_prev, s_prev, dw), (da,)

            sequences = [previous_states] + ([d_out] if return_sequences else []) + ([m] if m is not None else [])
            # Without return_sequences only the last state is an output: its
            # gradient starts the carry and no per-step gradient is read.
            ds_last = tf.zeros_like(s0) if return_sequences else d_out
            carry = (ds_last, last, tf.zeros_like(w))
            (ds0, _, dw), (d_pre,) = loop.time_loop(backward_step, length, carry, sequences, 1, xp.dtype, reverse=True)
            return (d_pre.stack(), ds0, dw) + (None,) * len(extras)

        return (saved[1].stack() if return_sequences else last), grad

    return recurrence(loop.project_all(inputs, *projection), initial_state, w, *extras)
