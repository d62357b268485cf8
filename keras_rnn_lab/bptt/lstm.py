"""BPTT for the LSTM, gates in compute order [i, f, o | C~].

The layer hands the kernels over with the gate blocks reordered from Keras's
[i, f, C~, o] to [i, f, o, C~], so one recurrent activation covers the three
sigmoid gates and one activation the candidate, with a single split between.
"""

import tensorflow as tf

from keras_rnn_lab.bptt import loop

# Keras's block order i, f, C~, o -> compute order i, f, o, C~.
COMPUTE_ORDER = (0, 1, 3, 2)


def _forward_step(w, activation, recurrent_activation, r):
    def step(t, carry, xp_t, *m_t):
        h_prev, c_prev = carry
        h_in = h_prev if r is None else h_prev * r
        a = xp_t + tf.matmul(h_in, w)
        a_sigma, a_candidate = tf.split(a, [3 * w.shape[0], w.shape[0]], axis=-1)
        gates = loop.activate(recurrent_activation, a_sigma)
        candidate = loop.activate(activation, a_candidate)
        i, f, o = tf.split(gates, 3, axis=-1)
        c = f * c_prev + i * candidate
        c_activated = loop.activate(activation, c)
        h = o * c_activated
        if m_t:
            keep = m_t[0] > 0
            c = tf.where(keep, c, c_prev)
            h = tf.where(keep, h, h_prev)
        # What the backward pass reads: h_t, C_{t-1}, gates, C~, tanh(C_t).
        return (h, c), (h, c_prev, gates, candidate, c_activated)

    return step


def lstm_recurrence(
    projected,
    initial_h,
    initial_c,
    recurrent_kernel,
    activation,
    recurrent_activation,
    recurrent_mask=None,
    step_mask=None,
    training=True,
):
    """Run the LSTM; returns (h sequence (time, batch, units), final C).

    projected: (time, batch, 4*units), x_t U + b in COMPUTE_ORDER;
    recurrent_kernel: (units, 4*units) in COMPUTE_ORDER; activation and
    recurrent_activation: Keras names that `loop.supports`; recurrent_mask:
    (batch, units) or None; step_mask: (time, batch, 1) float or None.
    training: False runs the plain forward loop; True attaches this backward:

    Forward, per step:
        [i, f, o] = sigma(a_s),  C~ = tanh(a_c),  a = xp_t + h_{t-1} W
        C_t = f C_{t-1} + i C~,  h_t = o tanh(C_t)
    Backward, with dh_t, dC_t the gradients reaching the step (masked steps
    pass them straight to t-1):
        do = dh_t tanh(C_t)
        dC = dC_t + dh_t o tanh'(C_t)
        di = dC C~,  df = dC C_{t-1},  dC~ = dC i
        da = [di, df, do] sigma' | dC~ tanh'
        dh_{t-1} = da W^T,  dC_{t-1} = dC f
        dW = sum_t h_{t-1}^T da_t   (one matmul after the loop)
    """
    extras = [t for t in (recurrent_mask, step_mask) if t is not None]
    length = projected.shape[0] or tf.shape(projected)[0]
    # A read of the variable, so a custom gradient sees a plain tensor input.
    w = tf.convert_to_tensor(recurrent_kernel)

    if not training:
        step = _forward_step(w, activation, recurrent_activation, recurrent_mask)
        sequences = [projected] + ([step_mask] if step_mask is not None else [])
        (_, c_last), (hs,) = loop.time_loop(step, length, (initial_h, initial_c), sequences, 1, projected.dtype)
        return hs.stack(), c_last

    @tf.custom_gradient
    def recurrence(xp, h0, c0, w, *extras):
        r = extras[0] if recurrent_mask is not None else None
        m = extras[-1] if step_mask is not None else None
        step = _forward_step(w, activation, recurrent_activation, r)
        sequences = [xp] + ([m] if m is not None else [])
        (_, c_last), saved = loop.time_loop(step, length, (h0, c0), sequences, 5, xp.dtype)
        hs = saved[0].stack()
        cs_prev, gates, candidates, cs_activated = saved[1:]

        def grad(d_hs, d_c_last):
            d_hs = loop.or_zeros(d_hs, hs)
            d_c_last = loop.or_zeros(d_c_last, c_last)
            w_t = tf.transpose(w)

            def backward_step(t, carry, c_prev, gates_t, candidate, c_activated, dh_out, *m_t):
                dh_next, dc_next = carry
                dh = dh_next + dh_out
                dh_step, dc_step = (dh, dc_next) if not m_t else (dh * m_t[0], dc_next * m_t[0])
                i, f, o = tf.split(gates_t, 3, axis=-1)
                do = dh_step * c_activated
                dc = dc_step + loop.times_derivative(activation, dh_step * o, c_activated)
                d_gates = tf.concat([dc * candidate, dc * c_prev, do], axis=-1)
                d_sigma = loop.times_derivative(recurrent_activation, d_gates, gates_t)
                d_candidate = loop.times_derivative(activation, dc * i, candidate)
                da = tf.concat([d_sigma, d_candidate], axis=-1)
                dh_prev = tf.matmul(da, w_t)
                if r is not None:
                    dh_prev = dh_prev * r
                dc_prev = dc * f
                if m_t:
                    skip = 1.0 - m_t[0]
                    dh_prev = dh_prev + dh * skip
                    dc_prev = dc_prev + dc_next * skip
                return (dh_prev, dc_prev), (da,)

            sequences = [cs_prev, gates, candidates, cs_activated, d_hs] + ([m] if m is not None else [])
            (dh0, dc0), (da,) = loop.time_loop(
                backward_step, length, (tf.zeros_like(h0), d_c_last), sequences, 1, xp.dtype, reverse=True
            )
            da = da.stack()
            dw = loop.recurrent_kernel_gradient(h0, hs, da, r)
            return (da, dh0, dc0, dw) + (None,) * len(extras)

        return (hs, c_last), grad

    return recurrence(projected, initial_h, initial_c, w, *extras)
