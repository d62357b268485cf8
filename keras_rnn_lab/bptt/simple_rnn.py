"""BPTT for s_t = f(xp_t + s_{t-1} W), with optional step mask and recurrent dropout."""

import tensorflow as tf

from keras_rnn_lab.bptt import loop


def _forward_step(w, activation, r):
    def step(t, carry, xp_t, *m_t):
        (s_prev,) = carry
        s_in = s_prev if r is None else s_prev * r
        s = loop.activate(activation, xp_t + tf.matmul(s_in, w))
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
    the recurrence below sees xp_t = x_t U + b, units) = x_t U + b; initial_state: (batch, units);
    activation: a Keras activation name that `loop.supports`; recurrent_mask:
    (batch, units) dropout mask on s_{t-1} or None; step_mask: (time, batch, 1)
    float, 0 where a step is skipped (the state is carried over).
    training: False runs the plain forward loop (autodiff still works through
    it); True attaches the hand-written backward pass below.

    Backward, with ds_t the total gradient reaching s_t:
        da_t      = m_t * ds_t * f'(a_t)           (f' from s_t = f(a_t))
        ds_{t-1}  = (1 - m_t) * ds_t + (da_t W^T) * recurrent_mask
        dW        = sum_t (s_{t-1} * recurrent_mask)^T da_t
    """
    extras = [t for t in (recurrent_mask, step_mask) if t is not None]
    length = inputs.shape[0] or tf.shape(inputs)[0]
    # A read of the variable, so a custom gradient sees a plain tensor input.
    w = tf.convert_to_tensor(recurrent_kernel)

    if not training:
        step = _forward_step(w, activation, recurrent_mask)
        step = loop.projecting(step, *projection)
        sequences = [inputs] + ([step_mask] if step_mask is not None else [])
        (last,), kept = loop.time_loop(step, length, (initial_state,), sequences, int(return_sequences), inputs.dtype)
        return kept[0].stack() if return_sequences else last

    @tf.custom_gradient
    def recurrence(xp, s0, w, *extras):
        r = extras[0] if recurrent_mask is not None else None
        m = extras[-1] if step_mask is not None else None
        sequences = [xp] + ([m] if m is not None else [])
        (last,), (states_array,) = loop.time_loop(_forward_step(w, activation, r), length, (s0,), sequences, 1, xp.dtype)
        states = states_array.stack()  # for dW, and the output when return_sequences

        def grad(d_out):
            w_t = tf.transpose(w)

            def backward_step(t, carry, s_t, *inputs):
                (ds_next,) = carry
                ds = ds_next + inputs[0] if return_sequences else ds_next
                m_t = inputs[-1:] if m is not None else ()
                da = loop.times_derivative(activation, ds if not m_t else ds * m_t[0], s_t)
                ds_prev = tf.matmul(da, w_t)
                if r is not None:
                    ds_prev = ds_prev * r
                if m_t:
                    ds_prev = ds_prev + ds * (1.0 - m_t[0])
                return (ds_prev,), (da,)

            sequences = [states_array] + ([d_out] if return_sequences else []) + ([m] if m is not None else [])
            # Without return_sequences only the last state is an output: its
            # gradient starts the carry and no per-step gradient is read.
            ds_last = tf.zeros_like(s0) if return_sequences else d_out
            (ds0,), (d_pre,) = loop.time_loop(backward_step, length, (ds_last,), sequences, 1, xp.dtype, reverse=True)
            d_pre = d_pre.stack()
            dw = loop.recurrent_kernel_gradient(s0, states, d_pre, r)
            return (d_pre, ds0, dw) + (None,) * len(extras)

        return (states if return_sequences else last), grad

    return recurrence(loop.project_all(inputs, *projection), initial_state, w, *extras)
