"""The "matmuls only" candidate: a linear recurrence with a cell's matmul shapes
and its hand-written BPTT, timed as the bound no gate arithmetic can beat."""

import numpy as np
import tensorflow as tf

from keras_rnn_lab.layers.bptt import loop

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}

MATMULS_ONLY = "matmuls only"


def linear_recurrence(x, kernel, recurrent_kernel, gates):
    """The matmuls of our layers' forward pass and nothing else.

    x: (time, batch, features); kernel U: (features, gates*units); recurrent
    kernel W: (units, gates*units).  With a_t = x_t U + h_{t-1} W (all steps'
    x_t U in one matmul, as our layers do when training; h_t W split over the
    two cores as they do, `loop.two_core_matmul`),
        h_t = sum of the `gates` blocks of a_t          (h_{-1} = 0)
    a linear recurrence with the cell's matmul shapes but none of its gate
    arithmetic.  Returns the states (time, batch, units).
    """
    steps, batch, features = x.shape
    units = recurrent_kernel.shape[0]
    projected = tf.reshape(tf.matmul(tf.reshape(x, [-1, features]), kernel), [steps, batch, gates * units])
    recurrent_product = loop.two_core_matmul(recurrent_kernel, batch)

    def step(t, h, states):
        a = tf.gather(projected, t) + recurrent_product(h)
        h = tf.reduce_sum(tf.reshape(a, [batch, gates, units]), axis=1) if gates > 1 else a
        return t + 1, h, states.write(t, h)

    initial = (0, tf.zeros([batch, units], x.dtype), tf.TensorArray(x.dtype, size=steps))
    _, _, states = tf.while_loop(lambda t, *_: t < steps, step, initial)
    return states.stack()


def linear_recurrence_gradients(x, states, recurrent_kernel, gates, d_last):
    """BPTT of `linear_recurrence` (its `states`) for a gradient d_last reaching h_T only: (dU, dW).

    Our layers' backward pass with only its matmuls: da_t = dh_t copied into
    every gate block, dh_{t-1} = da_t W^T (split over the two cores), dW +=
    h_{t-1}^T da_t beside the chain, then dU = sum_t x_t^T da_t in one matmul.
    The gap between a layer and this row is what its activations and gate
    arithmetic cost.
    """
    steps, batch, features = x.shape
    back_product = loop.two_core_matmul(tf.transpose(recurrent_kernel), batch)

    def step(i, dh, d_recurrent, d_pre):
        t = steps - 1 - i
        da = tf.tile(dh, [1, gates]) if gates > 1 else dh
        h_prev = tf.gather(states, tf.maximum(t - 1, 0)) * tf.cast(t > 0, x.dtype)
        d_recurrent = d_recurrent + tf.matmul(h_prev, da, transpose_a=True)
        return i + 1, back_product(da), d_recurrent, d_pre.write(t, da)

    initial = (0, d_last, tf.zeros_like(recurrent_kernel), tf.TensorArray(x.dtype, size=steps))
    _, _, d_recurrent, d_pre = tf.while_loop(lambda i, *_: i < steps, step, initial)
    d_pre = tf.reshape(d_pre.stack(), [steps * batch, -1])
    d_kernel = tf.matmul(tf.reshape(x, [steps * batch, features]), d_pre, transpose_a=True)
    return d_kernel, d_recurrent


def matmuls_only_steps(cell, x, y):
    """Training step and inference of the matmuls-only row (`linear_recurrence_gradients`)."""
    gates, units = GATES[cell], y.shape[-1]
    rng = np.random.default_rng(0)
    # Rows of an orthogonal matrix over `gates` keep h_t bounded without activations.
    orthogonal = np.linalg.qr(rng.standard_normal((gates * units, gates * units)))[0][:units] / gates
    recurrent_kernel = tf.Variable(orthogonal.astype(np.float32))
    kernel = tf.Variable((rng.standard_normal((x.shape[-1], gates * units)) / np.sqrt(x.shape[-1])).astype(np.float32))
    time_major = tf.transpose(x, [1, 0, 2])

    @tf.function
    def train():
        states = linear_recurrence(time_major, kernel, recurrent_kernel, gates)
        h_last = states[-1]
        d_kernel, d_recurrent = linear_recurrence_gradients(time_major, states, recurrent_kernel, gates, h_last - y)
        kernel.assign_sub(1e-9 * d_kernel)
        recurrent_kernel.assign_sub(1e-9 * d_recurrent)
        return tf.reduce_sum(h_last)

    @tf.function
    def infer():
        return linear_recurrence(time_major, kernel, recurrent_kernel, gates)[-1]

    return lambda: train().numpy(), lambda: infer().numpy()
