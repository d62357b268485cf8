"""BPTT for the LSTM, gate blocks in compute order [i, C~, f, o].

The layer hands the kernels over with the gate blocks reordered from Keras's
[i, f, C~, o] to [i, C~, f, o], the order of TensorFlow's fused
`LSTMBlockCellGrad` kernel, which does a whole step's elementwise backward
(below) in one op when the activations are Keras's defaults (tanh, sigmoid).
Other supported activations use the same equations written op by op.
"""

import tensorflow as tf

from keras_rnn_lab.layers.bptt import loop

# Keras's block order i, f, C~, o -> compute order i, C~, f, o.
COMPUTE_ORDER = (0, 2, 1, 3)


def _forward_step(w, activation, recurrent_activation, r, rows):
    recurrent_product = loop.two_core_matmul(w, rows)

    def step(t, carry, xp_t, *m_t):
        h_prev, c_prev = carry
        h_in = h_prev if r is None else h_prev * r
        a_i, a_c, a_f, a_o = tf.split(xp_t + recurrent_product(h_in), 4, axis=-1)
        # Four activations rather than one over [i, f, o]: independent ops that
        # the two cores run side by side (measured faster than one op + split).
        i = loop.activate(recurrent_activation, a_i)
        candidate = loop.activate(activation, a_c)
        f = loop.activate(recurrent_activation, a_f)
        o = loop.activate(recurrent_activation, a_o)
        c = f * c_prev + i * candidate
        c_activated = loop.activate(activation, c)
        h = o * c_activated
        saved = (c_prev, i, candidate, f, o, c, c_activated, h_prev)  # gates before masking
        if m_t:
            keep = m_t[0] > 0
            c = tf.where(keep, c, c_prev)
            h = tf.where(keep, h, h_prev)
        return (h, c), (h,) + saved

    return step


def _fused_step_gradient(dh, dc, c_prev, i, candidate, f, o, c, c_activated, zeros):
    """(da in [i, C~, f, o], dC_{t-1}) from TensorFlow's fused kernel (tanh/sigmoid)."""
    x, w, peephole, bias = zeros
    # x, h_prev, w and b are only checked for shape; h_prev gets C_{t-1}'s.
    out = tf.raw_ops.LSTMBlockCellGrad(
        x=x,
        cs_prev=c_prev,
        h_prev=c_prev,
        w=w,
        wci=peephole,
        wcf=peephole,
        wco=peephole,
        b=bias,
        i=i,
        cs=c,
        f=f,
        o=o,
        ci=candidate,
        co=c_activated,
        cs_grad=dc,
        h_grad=dh,
        use_peephole=False,
    )
    return out.dicfo, out.cs_prev_grad


def _step_gradient(activation, recurrent_activation):
    """The same equations op by op, for any activations `loop` supports."""

    def gradient(dh, dc, c_prev, i, candidate, f, o, c, c_activated, zeros):
        do = dh * c_activated
        dc = dc + loop.times_derivative(activation, dh * o, c_activated)
        da = tf.concat(
            [
                loop.times_derivative(recurrent_activation, dc * candidate, i),
                loop.times_derivative(activation, dc * i, candidate),
                loop.times_derivative(recurrent_activation, dc * c_prev, f),
                loop.times_derivative(recurrent_activation, do, o),
            ],
            axis=-1,
        )
        return da, dc * f

    return gradient


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
    """Run the LSTM; returns (h sequence (time, batch, units), final C), or
    (final h, final C) when `return_sequences` is False.

    inputs: raw inputs x (time, batch, features); projection: (U, b) of the
    input projection, b possibly None.  Inference projects x_t U + b inside the
    loop (`loop.projecting`), training once before it (`loop.project_all`), so
    the recurrence below sees xp_t = x_t U + b, (batch, 4*units) in COMPUTE_ORDER;
    recurrent_kernel: (units, 4*units) in COMPUTE_ORDER; activation and
    recurrent_activation: Keras names that `loop.supports`; recurrent_mask:
    (batch, units) or None; step_mask: (time, batch, 1) float or None.
    training: False runs the plain forward loop; True attaches this backward:

    Forward, per step:
        i, f, o = sigma(a_i), sigma(a_f), sigma(a_o),  C~ = tanh(a_c),  a = xp_t + h_{t-1} W
        C_t = f C_{t-1} + i C~,  h_t = o tanh(C_t)
    Backward, with dh_t, dC_t the gradients reaching the step (masked steps
    pass them straight to t-1):
        do = dh_t tanh(C_t)
        dC = dC_t + dh_t o tanh'(C_t)
        di = dC C~,  df = dC C_{t-1},  dC~ = dC i
        da = [di sigma', dC~ tanh', df sigma', do sigma']
        dh_{t-1} = da W^T,  dC_{t-1} = dC f
        dW = sum_t h_{t-1}^T da_t   (per chunk of steps beside the dh chain, loop.backward_in_chunks)
    """
    extras = [t for t in (recurrent_mask, step_mask) if t is not None]
    length = inputs.shape[0] or tf.shape(inputs)[0]
    # A read of the variable, so a custom gradient sees a plain tensor input.
    w = tf.convert_to_tensor(recurrent_kernel)

    if not training:
        step = _forward_step(w, activation, recurrent_activation, recurrent_mask, initial_h.shape[0])
        step = loop.projecting(step, *projection)
        sequences = [inputs] + ([step_mask] if step_mask is not None else [])
        (h_last, c_last), kept = loop.time_loop(
            step, length, (initial_h, initial_c), sequences, int(return_sequences), inputs.dtype
        )
        return (kept[0].stack() if return_sequences else h_last), c_last

    # The fused kernel exists for tanh/sigmoid in float16 and float32 only
    # (not bfloat16, as mixed_bfloat16 uses, nor float64).
    if (activation, recurrent_activation) == ("tanh", "sigmoid") and inputs.dtype in (tf.float16, tf.float32):
        step_gradient = _fused_step_gradient
    else:
        step_gradient = _step_gradient(activation, recurrent_activation)

    @tf.custom_gradient
    def recurrence(xp, h0, c0, w, *extras):
        r = extras[0] if recurrent_mask is not None else None
        m = extras[-1] if step_mask is not None else None
        step = _forward_step(w, activation, recurrent_activation, r, h0.shape[0])
        sequences = [xp] + ([m] if m is not None else [])
        step = loop.state_output_last(step)  # saved[:8] for the backward pass, saved[8]: h
        keep = 9 if return_sequences else 8
        (h_last, c_last), saved = loop.time_loop(step, length, (h0, c0), sequences, keep, xp.dtype)
        h_out = saved[8].stack() if return_sequences else h_last

        def grad(d_h_out, d_c_last):
            d_h_out = loop.or_zeros(d_h_out, h_out)
            d_c_last = loop.or_zeros(d_c_last, c_last)
            back_product = loop.two_core_matmul(tf.transpose(w), h0.shape[0])  # da W^T
            units = w.shape[0]
            # The fused kernel checks x and w against each other: x with 0
            # features and w = W (units, 4*units) pass; neither is read.
            zeros = (
                tf.zeros([tf.shape(h0)[0], 0], xp.dtype),
                w,
                tf.zeros([units], xp.dtype),
                tf.zeros([4 * units], xp.dtype),
            )

            def backward_step(t, carry, *inputs):
                dh_next, dc_next = carry
                dh = dh_next + inputs[0] if return_sequences else dh_next
                saved_t = inputs[1:] if return_sequences else inputs
                m_t = saved_t[8] if m is not None else None
                h_prev_t = saved_t[7]
                if m_t is None:
                    da, dc_prev = step_gradient(dh, dc_next, *saved_t[:7], zeros)
                else:
                    da, dc_prev = step_gradient(dh * m_t, dc_next * m_t, *saved_t[:7], zeros)
                dh_prev = back_product(da)
                if r is not None:
                    dh_prev = dh_prev * r
                if m_t is not None:
                    skip = 1.0 - m_t
                    dh_prev = dh_prev + dh * skip
                    dc_prev = dc_prev + dc_next * skip
                # dW = sum_t h_in^T da is formed per chunk of steps, beside the chain.
                h_in = h_prev_t if r is None else h_prev_t * r
                return (dh_prev, dc_prev), (da, h_in)

            def weight_gradient(da, h_in):
                return (loop.summed_outer_product(h_in, da),)

            sequences = ([d_h_out] if return_sequences else []) + saved[:8] + ([m] if m is not None else [])
            # Without return_sequences only the last h is an output: its gradient
            # starts the carry and no per-step gradient is read.
            dh_last = tf.zeros_like(h0) if return_sequences else d_h_out
            (dh0, dc0), (da,), (dw,) = loop.backward_in_chunks(
                backward_step, length, (dh_last, d_c_last), sequences, xp.dtype, 2, 1, weight_gradient
            )
            return (da, dh0, dc0, dw) + (None,) * len(extras)

        return (h_out, c_last), grad

    return recurrence(loop.project_all(inputs, *projection), initial_h, initial_c, w, *extras)
