"""BPTT for the GRU in both reset placements and both update conventions."""

import tensorflow as tf

from keras_rnn_lab.bptt import loop


def _mix(update_convention, z, h_prev, candidate):
    """h_t from the update gate: Keras z h_{t-1} + (1-z) h~, lecture (1-z) h_{t-1} + z h~."""
    if update_convention == "keras":
        return candidate + z * (h_prev - candidate)
    return h_prev + z * (candidate - h_prev)


def _mix_gradients(update_convention, dh, z, h_prev, candidate):
    """(dz, dh~, direct dh_{t-1}) of `_mix`."""
    if update_convention == "keras":
        return dh * (h_prev - candidate), dh * (1.0 - z), dh * z
    return dh * (candidate - h_prev), dh * z, dh * (1.0 - z)


def _forward_step(w, recurrent_bias, r, reset_after, update_convention, activation, recurrent_activation):
    units = w.shape[0]
    w_zr, w_h = (None, None) if reset_after else (w[:, : 2 * units], w[:, 2 * units :])

    def step(t, carry, xp_t, *m_t):
        (h_prev,) = carry
        h_in = h_prev if r is None else h_prev * r
        x_zr, x_h = tf.split(xp_t, [2 * units, units], axis=-1)
        if reset_after:
            recurrent = tf.matmul(h_in, w)
            if recurrent_bias is not None:
                recurrent = recurrent + recurrent_bias
            rec_zr, rec_h = tf.split(recurrent, [2 * units, units], axis=-1)
            gates = loop.activate(recurrent_activation, x_zr + rec_zr)
            z, reset = tf.split(gates, 2, axis=-1)
            candidate = loop.activate(activation, x_h + reset * rec_h)
            kept = rec_h  # (h W_h + b'_h), needed for dr
        else:
            gates = loop.activate(recurrent_activation, x_zr + tf.matmul(h_in, w_zr))
            z, reset = tf.split(gates, 2, axis=-1)
            kept = reset * h_in  # r * h_{t-1}, needed for dW_h
            candidate = loop.activate(activation, x_h + tf.matmul(kept, w_h))
        h = _mix(update_convention, z, h_prev, candidate)
        if m_t:
            h = tf.where(m_t[0] > 0, h, h_prev)
        return (h,), (h, h_prev, gates, candidate, kept)

    return step


def gru_recurrence(
    projected,
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
):
    """Run the GRU; returns the states (time, batch, units).

    projected: (time, batch, 3*units) = x_t U + b, blocks z, r, h;
    recurrent_bias: b' (3*units,) when reset_after, else None; the rest as in
    `keras_rnn_lab.GRUCell`.  training: False runs the plain forward loop;
    True attaches this backward pass (a = pre-activations, Keras convention):

        dz = dh (h_{t-1} - h~),  dh~ = dh (1 - z),  dh_{t-1} += dh z
        da_h = dh~ tanh'
        reset_after:   dr = da_h (h_{t-1} W_h + b'_h),  d(h W_h) = da_h r
                       da_rec = [dz sigma', dr sigma', da_h r]
                       dh_{t-1} += da_rec W^T,  dW = sum_t h_{t-1}^T da_rec,  db' = sum da_rec
        reset_before:  d(r h) = da_h W_h^T,  dr = d(r h) h_{t-1}
                       dh_{t-1} += [dz, dr] sigma' W_zr^T + d(r h) r
                       dW = [sum h_{t-1}^T [dz, dr] sigma' | sum (r h_{t-1})^T da_h]
    """
    extras = [t for t in (recurrent_mask, step_mask) if t is not None]
    length = projected.shape[0] or tf.shape(projected)[0]
    units = initial_state.shape[-1]
    # Reads of the variables, so a custom gradient sees plain tensor inputs.
    w = tf.convert_to_tensor(recurrent_kernel)
    has_bias = recurrent_bias is not None
    weights = [w] + ([tf.convert_to_tensor(recurrent_bias)] if has_bias else [])
    config = (reset_after, update_convention, activation, recurrent_activation)

    if not training:
        step = _forward_step(w, weights[1] if has_bias else None, recurrent_mask, *config)
        sequences = [projected] + ([step_mask] if step_mask is not None else [])
        _, (hs,) = loop.time_loop(step, length, (initial_state,), sequences, 1, projected.dtype)
        return hs.stack()

    @tf.custom_gradient
    def recurrence(xp, h0, *args):
        w = args[0]
        b = args[1] if has_bias else None
        extras = args[len(weights) :]
        r = extras[0] if recurrent_mask is not None else None
        m = extras[-1] if step_mask is not None else None
        step = _forward_step(w, b, r, *config)
        sequences = [xp] + ([m] if m is not None else [])
        _, saved = loop.time_loop(step, length, (h0,), sequences, 5, xp.dtype)
        hs = saved[0].stack()
        # reset before: dW_h needs every step's r * h_{t-1} at once.
        kept_stacked = None if reset_after else saved[4].stack()

        def grad(d_hs):
            w_t = tf.transpose(w)
            w_zr_t, w_h_t = w_t[: 2 * units], w_t[2 * units :]

            def backward_step(t, carry, h_prev, gates, candidate, kept, dh_out, *m_t):
                (dh_next,) = carry
                dh = dh_next + dh_out
                z, reset = tf.split(gates, 2, axis=-1)
                dz, d_candidate, dh_prev = _mix_gradients(
                    update_convention, dh if not m_t else dh * m_t[0], z, h_prev, candidate
                )
                da_h = loop.times_derivative(activation, d_candidate, candidate)
                if reset_after:
                    d_zr = loop.times_derivative(recurrent_activation, tf.concat([dz, da_h * kept], -1), gates)
                    d_recurrent = tf.concat([d_zr, da_h * reset], axis=-1)
                    dh_in = tf.matmul(d_recurrent, w_t)
                else:
                    d_kept = tf.matmul(da_h, w_h_t)
                    h_in = h_prev if r is None else h_prev * r
                    d_zr = loop.times_derivative(recurrent_activation, tf.concat([dz, d_kept * h_in], -1), gates)
                    d_recurrent = d_zr
                    dh_in = tf.matmul(d_zr, w_zr_t) + d_kept * reset
                dh_prev = dh_prev + (dh_in if r is None else dh_in * r)
                if m_t:
                    dh_prev = dh_prev + dh * (1.0 - m_t[0])
                return (dh_prev,), (tf.concat([d_zr, da_h], axis=-1), d_recurrent)

            sequences = saved[1:] + [d_hs] + ([m] if m is not None else [])
            (dh0,), (d_xp, d_recurrent) = loop.time_loop(
                backward_step, length, (tf.zeros_like(h0),), sequences, 2, xp.dtype, reverse=True
            )
            d_xp = d_xp.stack()
            if reset_after:
                d_recurrent = d_recurrent.stack()
                weight_grads = [loop.recurrent_kernel_gradient(h0, hs, d_recurrent, r)]
                if has_bias:
                    weight_grads.append(tf.reduce_sum(d_recurrent, axis=[0, 1]))
            else:
                dw_zr = loop.recurrent_kernel_gradient(h0, hs, d_xp[..., : 2 * units], r)
                dw_h = loop.summed_outer_product(kept_stacked, d_xp[..., 2 * units :])
                weight_grads = [tf.concat([dw_zr, dw_h], axis=1)]
            return [d_xp, dh0] + weight_grads + [None] * len(extras)

        return hs, grad

    return recurrence(projected, initial_state, *weights, *extras)
