"""BPTT for the GRU in both reset placements and both update conventions."""

import tensorflow as tf

from keras_rnn_lab.layers.bptt import loop


def _mix(update_convention, z, h_prev, candidate):
    """h_t from the update gate: Keras z h_{t-1} + (1-z) h~, lecture (1-z) h_{t-1} + z h~."""
    if update_convention == "keras":
        return candidate + z * (h_prev - candidate)
    return h_prev + z * (candidate - h_prev)


def _mix_gradients(update_convention, dh, z, h_prev, candidate):
    """(dz, dh~, direct dh_{t-1}) of `_mix`."""
    if update_convention == "keras":
        direct = dh * z
        return dh * (h_prev - candidate), dh - direct, direct
    to_candidate = dh * z
    return dh * (candidate - h_prev), to_candidate, dh - to_candidate


def _forward_step(w, recurrent_bias, r, rows, reset_after, update_convention, activation, recurrent_activation):
    units = w.shape[0]
    w_zr, w_h = (None, None) if reset_after else (w[:, : 2 * units], w[:, 2 * units :])
    recurrent_product = loop.two_core_matmul(w if reset_after else w_zr, rows)
    candidate_product = None if reset_after else loop.two_core_matmul(w_h, rows)

    def step(t, carry, xp_t, *m_t):
        (h_prev,) = carry
        h_in = h_prev if r is None else h_prev * r
        x_z, x_r, x_h = tf.split(xp_t, 3, axis=-1)
        # Separate activations for z and r: independent ops that the two cores
        # run side by side (measured faster than one op over [z, r] + split).
        if reset_after:
            recurrent = recurrent_product(h_in)
            if recurrent_bias is not None:
                recurrent = recurrent + recurrent_bias
            rec_z, rec_r, rec_h = tf.split(recurrent, 3, axis=-1)
            z = loop.activate(recurrent_activation, x_z + rec_z)
            reset = loop.activate(recurrent_activation, x_r + rec_r)
            candidate = loop.activate(activation, x_h + reset * rec_h)
            kept = rec_h  # (h W_h + b'_h), needed for dr
        else:
            rec_z, rec_r = tf.split(recurrent_product(h_in), 2, axis=-1)
            z = loop.activate(recurrent_activation, x_z + rec_z)
            reset = loop.activate(recurrent_activation, x_r + rec_r)
            kept = reset * h_in  # r * h_{t-1}, needed for dW_h
            candidate = loop.activate(activation, x_h + candidate_product(kept))
        h = _mix(update_convention, z, h_prev, candidate)
        if m_t:
            h = tf.where(m_t[0] > 0, h, h_prev)
        return (h,), (h, h_prev, z, reset, candidate, kept)

    return step


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
    """Run the GRU; returns the states (time, batch, units), or only the last
    one (batch, units) when `return_sequences` is False.

    inputs: raw inputs x (time, batch, features); projection: (U, b) of the
    input projection, b possibly None.  Inference projects x_t U + b inside the
    loop (`loop.projecting`), training once before it (`loop.project_all`), so
    the recurrence below sees xp_t = x_t U + b, (batch, 3*units) in blocks z, r, h;
    recurrent_bias: b' (3*units,) when reset_after, else None; the rest as in
    `keras_rnn_lab.GRUCell`.  training: False runs the plain forward loop;
    True attaches this backward pass (a = pre-activations, Keras convention):

        dz = dh (h_{t-1} - h~),  dh~ = dh (1 - z),  dh_{t-1} += dh z
        da_h = dh~ tanh'
        reset_after:   dr = da_h (h_{t-1} W_h + b'_h),  d(h W_h) = da_h r
                       da_rec = [dz sigma', dr sigma', da_h r]
                       dh_{t-1} += da_rec W^T,  dW = sum_t h_{t-1}^T da_rec,  db' = sum da_rec
                       (dW and db' formed per chunk of steps beside the dh chain, loop.backward_in_chunks)
        reset_before:  d(r h) = da_h W_h^T,  dr = d(r h) h_{t-1}
                       dh_{t-1} += [dz, dr] sigma' W_zr^T + d(r h) r
                       dW = [sum h_{t-1}^T [dz, dr] sigma' | sum (r h_{t-1})^T da_h]
    """
    extras = [t for t in (recurrent_mask, step_mask) if t is not None]
    length = inputs.shape[0] or tf.shape(inputs)[0]
    units = initial_state.shape[-1]
    # Reads of the variables, so a custom gradient sees plain tensor inputs.
    w = tf.convert_to_tensor(recurrent_kernel)
    has_bias = recurrent_bias is not None
    weights = [w] + ([tf.convert_to_tensor(recurrent_bias)] if has_bias else [])
    config = (reset_after, update_convention, activation, recurrent_activation)

    if not training:
        step = _forward_step(w, weights[1] if has_bias else None, recurrent_mask, initial_state.shape[0], *config)
        step = loop.projecting(step, *projection)
        sequences = [inputs] + ([step_mask] if step_mask is not None else [])
        (last,), kept = loop.time_loop(step, length, (initial_state,), sequences, int(return_sequences), inputs.dtype)
        return kept[0].stack() if return_sequences else last

    @tf.custom_gradient
    def recurrence(xp, h0, *args):
        w = args[0]
        b = args[1] if has_bias else None
        extras = args[len(weights) :]
        r = extras[0] if recurrent_mask is not None else None
        m = extras[-1] if step_mask is not None else None
        step = _forward_step(w, b, r, h0.shape[0], *config)
        sequences = [xp] + ([m] if m is not None else [])
        step = loop.state_output_last(step)  # saved[:5] for the backward pass, saved[5]: h
        keep = 6 if return_sequences else 5
        (last,), saved = loop.time_loop(step, length, (h0,), sequences, keep, xp.dtype)
        hs = saved[5].stack() if return_sequences else None

        def grad(d_out):
            w_t = tf.transpose(w)
            w_zr_t, w_h_t = w_t[: 2 * units], w_t[2 * units :]
            back_product = loop.two_core_matmul(w_t if reset_after else w_zr_t, h0.shape[0])  # d W^T
            kept_product = None if reset_after else loop.two_core_matmul(w_h_t, h0.shape[0])

            # Each step hands on what dW (and db') need; `backward_in_chunks` forms
            # them as large matmuls per chunk of steps, beside the dh chain.
            def backward_step(t, carry, h_prev, z, reset, candidate, kept, *inputs):
                dh_next = carry[0]
                h_in = h_prev if r is None else h_prev * r
                dh = dh_next + inputs[0] if return_sequences else dh_next
                m_t = inputs[-1:] if m is not None else ()
                dz, d_candidate, dh_prev = _mix_gradients(
                    update_convention, dh if not m_t else dh * m_t[0], z, h_prev, candidate
                )
                da_h = loop.times_derivative(activation, d_candidate, candidate)
                da_z = loop.times_derivative(recurrent_activation, dz, z)
                if reset_after:
                    da_r = loop.times_derivative(recurrent_activation, da_h * kept, reset)
                    d_recurrent = tf.concat([da_z, da_r, da_h * reset], axis=-1)
                    dh_in = back_product(d_recurrent)
                else:
                    d_kept = kept_product(da_h)
                    da_r = loop.times_derivative(recurrent_activation, d_kept * h_in, reset)
                    d_recurrent = tf.concat([da_z, da_r], axis=-1)
                    dh_in = back_product(d_recurrent) + d_kept * reset
                dh_prev = dh_prev + (dh_in if r is None else dh_in * r)
                if m_t:
                    dh_prev = dh_prev + dh * (1.0 - m_t[0])
                d_xp = tf.concat([da_z, da_r, da_h], axis=-1)
                if reset_after:
                    return (dh_prev,), (d_xp, h_in, d_recurrent)
                return (dh_prev,), (d_xp, h_in, kept)

            def weight_gradients(d_xp, h_in, third):
                """dW (and db') of a chunk of steps, each (steps, batch, ...)."""
                if reset_after:  # third: d_recurrent = [dz sigma', dr sigma', da_h r]
                    dw = loop.summed_outer_product(h_in, third)
                    return (dw, loop.column_sums(third)) if has_bias else (dw,)
                # third: kept = r * h_{t-1}, the input of W_h
                dw_zr = loop.summed_outer_product(h_in, d_xp[..., : 2 * units])
                return (tf.concat([dw_zr, loop.summed_outer_product(third, d_xp[..., 2 * units :])], axis=1),)

            sequences = saved[:5] + ([d_out] if return_sequences else []) + ([m] if m is not None else [])
            # Without return_sequences only the last state is an output: its
            # gradient starts the carry and no per-step gradient is read.
            dh_last = tf.zeros_like(h0) if return_sequences else d_out
            (dh0,), (d_xp,), weight_grads = loop.backward_in_chunks(
                backward_step, length, (dh_last,), sequences, xp.dtype, 3, 1, weight_gradients
            )
            return [d_xp, dh0, *weight_grads] + [None] * len(extras)

        return (hs if return_sequences else last), grad

    return recurrence(loop.project_all(inputs, *projection), initial_state, *weights, *extras)
