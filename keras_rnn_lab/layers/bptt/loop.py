"""The time loops under the hand-written BPTT (TensorFlow only).

`tf.custom_gradient` bodies are not converted by AutoGraph, so both the forward
and the backward pass are explicit `tf.while_loop`s over TensorArrays.
"""

import tensorflow as tf

from keras_rnn_lab._tracing_switch import TracingSwitch

# Activations (by their Keras name) whose derivative we can write from the
# activation's own output y = f(a), which the forward pass keeps anyway:
# name -> (f, (dy, y) -> dy * f'(a)).  TensorFlow's fused *Grad kernels do the
# product in one op: tanh' = 1 - y^2, sigmoid' = y (1 - y), relu' = [y > 0].
# Anything else falls back to autodiff.
_ACTIVATIONS = {
    "tanh": (tf.tanh, lambda dy, y: tf.raw_ops.TanhGrad(y=y, dy=dy)),
    "sigmoid": (tf.sigmoid, lambda dy, y: tf.raw_ops.SigmoidGrad(y=y, dy=dy)),
    "relu": (tf.nn.relu, lambda dy, y: tf.raw_ops.ReluGrad(gradients=dy, features=y)),
    "linear": (tf.identity, lambda dy, y: dy),
}


def supports(activation_name):
    """True when the hand-written backward pass knows this activation (None: a custom one)."""
    return activation_name in _ACTIVATIONS


def activate(activation_name, a):
    return _ACTIVATIONS[activation_name][0](a)


def times_derivative(activation_name, upstream, y):
    """upstream * f'(a), with f' written from y = f(a) (no op for linear)."""
    return _ACTIVATIONS[activation_name][1](upstream, y)


class _StepReader:
    """`read(t)` of a time-major tensor, like a TensorArray's.

    A gather per step measured a little faster than unstacking the whole tensor
    into a TensorArray first, a copy that the loop has to wait for.
    """

    def __init__(self, sequence):
        self.sequence = sequence

    def read(self, t):
        return tf.gather(self.sequence, t)


def time_loop(step, length, carry, sequences, keep, dtype, reverse=False):
    """Run `step(t, carry, *sequences_t) -> (carry, outputs_t)` over time.

    sequences: time-major tensors (time, ...), or TensorArrays, read one step
        at a time (`_StepReader` for tensors).  Passing the forward loop's
        TensorArrays straight to the backward loop saves a stack and an unstack
        (a full copy each) of every saved activation.
    keep: how many of `step`'s per-step outputs (the first ones) to record,
        each in a TensorArray of `dtype`, written at index t in either direction.
    reverse: iterate t = length-1 ... 0 (the backward pass).
    Returns (final carry, [TensorArrays]); `.stack()` gives (time, ...).
    """
    return _loop_over(step, 0, length, carry, _readers(sequences), keep, dtype, reverse)


def backward_in_chunks(step, length, carry, sequences, dtype, n_outputs, record, summarize, chunks=4):
    """The reverse time loop as `chunks` consecutive loops, summarising each chunk.

    step(t, carry, *sequences_t) -> (carry, outputs): one backward step, with
        `n_outputs` per-step outputs of `dtype`.
    sequences: as in `time_loop`.
    record: how many of the first outputs to return stacked over all of time.
    summarize(*chunk_outputs) -> tuple of tensors: given every output of one
        chunk stacked (steps, ...), e.g. (dW, db) of those steps as large
        matmuls; the tuples of all chunks are summed.
    Returns (final carry, [recorded outputs (time, ...)], [summed summaries]).

    Why chunks: a weight gradient sum_t h_{t-1}^T da_t accumulated step by step
    costs a read-modify-write of the whole dW every step; formed after the
    loop, it waits for the whole chain.  Formed per chunk, one chunk's large
    matmul runs while the chain goes on through the next chunk (measured 8-10%
    faster training steps for the GRU at the reference shape, with 2 to 5
    chunks).  A length unknown when tracing runs as one chunk.
    """
    readers = _readers(sequences)
    chunks = max(1, min(chunks, length)) if isinstance(length, int) else 1
    bounds = [length * k // chunks for k in range(chunks + 1)]
    recorded, summaries = [], []
    for start, stop in reversed(list(zip(bounds[:-1], bounds[1:]))):
        carry, writers = _loop_over(step, start, stop, carry, readers, n_outputs, dtype, reverse=True)
        stacked = [w.stack() for w in writers]
        recorded.append(stacked[:record])
        summaries.append(summarize(*stacked))
    recorded = [tf.concat(pieces[::-1], axis=0) if len(pieces) > 1 else pieces[0] for pieces in zip(*recorded)]
    summed = [tf.add_n(list(parts)) if len(parts) > 1 else parts[0] for parts in zip(*summaries)]
    return carry, recorded, summed


def state_output_last(step):
    """`step` with its first output moved last.

    The forward steps output the new state first (all that inference records)
    and then what the backward pass reads.  Training records the state only
    when it is the layer's output (return_sequences): with it moved last,
    `keep` counts the saved activations first and the state last, and the
    other case writes nothing it never reads.
    """

    def rotated(t, carry, *inputs):
        carry, outputs = step(t, carry, *inputs)
        return carry, tuple(outputs[1:]) + tuple(outputs[:1])

    return rotated


def _readers(sequences):
    return [s if isinstance(s, tf.TensorArray) else _StepReader(s) for s in sequences]


_BUILTIN_OPS_ONLY = TracingSwitch()


def builtin_ops_only():
    """Trace the loops (inside the block) so that TFLite converts them with its
    builtin ops alone: the per-step outputs go into a (time, ...) tensor with
    one `tensor_scatter_nd_update` per step instead of a TensorArray, which
    TFLite lowers to builtin ops only for a fixed batch size (else it needs the
    Flex delegate).  Same numbers; used by the TFLite export, whose traced
    graph is converted, never by training."""
    return _BUILTIN_OPS_ONLY.turned_on()


def tracing_builtin_ops_only():
    """True inside `builtin_ops_only()` (a TFLite export tracing its loops)."""
    return _BUILTIN_OPS_ONLY.is_on


class _ScatterWriter:
    """A TensorArray's `write` and `stack` over a preallocated (steps, ...) tensor."""

    def __init__(self, tensor):
        self.tensor = tensor

    def write(self, index, value):
        return _ScatterWriter(tf.tensor_scatter_nd_update(self.tensor, [[index]], value[tf.newaxis]))

    def stack(self):
        return self.tensor


def _scatter_writers(step, start, steps, carry, readers, keep, dtype):
    # One step traced for the outputs' shapes only: nothing reads it, so the
    # graph optimizers prune it.  The batch size is the carry's.
    _, outputs = step(start, carry, *[reader.read(start) for reader in readers])
    batch = tf.shape(carry[0])[0]
    return tuple(_ScatterWriter(tf.zeros([steps, batch, *o.shape[1:]], dtype)) for o in outputs[:keep])


def _loop_over(step, start, stop, carry, readers, keep, dtype, reverse):
    """`step` for t in [start, stop) (descending when `reverse`); its first
    `keep` outputs recorded in TensorArrays at index t - start."""
    steps = stop - start
    from_zero = isinstance(start, int) and start == 0  # no offset ops in the loop then
    scatter = _BUILTIN_OPS_ONLY.is_on and keep > 0

    def body(i, carry, writers):
        t = stop - 1 - i if reverse else (i if from_zero else start + i)
        carry, outputs = step(t, carry, *[reader.read(t) for reader in readers])
        index = t if from_zero else t - start
        if scatter:
            writers = tuple(_ScatterWriter(w) for w in writers)
        writers = tuple(w.write(index, o) for w, o in zip(writers, outputs[:keep]))
        if scatter:
            writers = tuple(w.tensor for w in writers)
        return i + 1, tuple(carry), writers

    if scatter:
        writers = tuple(w.tensor for w in _scatter_writers(step, start, steps, carry, readers, keep, dtype))
    else:
        writers = tuple(tf.TensorArray(dtype, size=steps) for _ in range(keep))
    # A carry of known batch size can meet per-step tensors of unknown batch
    # size (inputs traced with batch None, an upstream gradient with a fixed
    # one), which tf.while_loop rejects as a shape change: let every carry's
    # first axis vary in the loop, then give the results their shapes back.
    invariants = (
        tf.TensorShape([]),
        tuple(tf.TensorShape([None]).concatenate(c.shape[1:]) if c.shape.rank else c.shape for c in carry),
        tuple(tf.TensorShape([None]).concatenate(w.shape[1:]) if scatter else tf.TensorShape(None) for w in writers),
    )
    _, final, writers = tf.while_loop(
        lambda i, *_: i < steps,
        body,
        (tf.constant(0), tuple(carry), writers),
        shape_invariants=invariants,
        maximum_iterations=steps,
    )
    if scatter:
        writers = [_ScatterWriter(w) for w in writers]
    return tuple(_with_shape_of(c, initial) for c, initial in zip(final, carry)), list(writers)


def _with_shape_of(tensor, like):
    """`tensor` with `like`'s static shape where that is known (checked at run time)."""
    return tf.ensure_shape(tensor, like.shape) if like.shape.is_fully_defined() else tensor


# Splitting pays for per-step products of this many multiply-adds (rows x
# depth x width), measured on the 2-core machine: below, the extra split and add
# cost more than the second core gives (a 128-unit SimpleRNN, 32 rows: 1.17x
# whole, 1.00x split); above, oneDNN already runs one product on both cores and
# two halves compete for them (a 512-unit LSTM, 64 rows: inference 1.21x whole,
# 0.99x split).  In between, 256 units and 64 rows, it gave 1.5x per product.
SPLIT_MIN_PRODUCT = 2**21
SPLIT_MAX_PRODUCT = 2**25
# The batch assumed where it is unknown while tracing (the benchmark's).
ASSUMED_ROWS = 64


def two_core_matmul(matrix, rows=None):
    """a -> a @ matrix, as two half-depth matmuls that run side by side.

    TensorFlow's oneDNN matmul runs a per-step product like (64, 256) x
    (256, 1024) on one core.  Splitting the shared dimension k,
        a @ M = a[:, :k/2] @ M[:k/2] + a[:, k/2:] @ M[k/2:],
    gives two independent matmuls that the executor runs on both cores: on
    the 2-core machine the per-step product ran 1.5x faster and a whole
    inference loop 1.2-1.3x faster (`python -m keras_rnn_lab.benchmark`).
    The rows of M are split once, here, outside the loop; per step only `a`
    is split.  The sum of two partial products rounds differently from one
    product (float32, ~1e-7 relative).  rows: the batch size, None if unknown;
    products outside [SPLIT_MIN_PRODUCT, SPLIT_MAX_PRODUCT] stay one matmul.
    """
    depth, width = matrix.shape
    if depth is None or width is None or depth % 2:
        return lambda a: tf.matmul(a, matrix)
    if not SPLIT_MIN_PRODUCT <= (rows or ASSUMED_ROWS) * depth * width <= SPLIT_MAX_PRODUCT:
        return lambda a: tf.matmul(a, matrix)
    top, bottom = tf.split(matrix, 2, axis=0)

    def product(a):
        a_top, a_bottom = tf.split(a, 2, axis=-1)
        return tf.matmul(a_top, top) + tf.matmul(a_bottom, bottom)

    return product


def projecting(step, kernel, bias):
    """`step` fed x_t U + b computed inside the loop from the raw x_t.

    The inference loops use it: one small matmul per step whose result is still
    in cache measured faster than reading a hoisted (time, batch, gates*units)
    projection back from memory.
    """

    def projected_step(t, carry, x_t, *rest):
        xp_t = tf.matmul(x_t, kernel)
        if bias is not None:
            xp_t = tf.nn.bias_add(xp_t, bias)
        return step(t, carry, xp_t, *rest)

    return projected_step


def project_all(inputs, kernel, bias):
    """x_t U + b for every step as one 2-D matmul: (time, batch, F) -> (time, batch, G).

    2-D on purpose: a 3-D matmul becomes a batched one whose kernel gradient is
    a sum of per-step products.  The training loops use it, so autodiff turns
    dU into one large matmul too (and skips dx where x needs no gradient).
    """
    steps, batch = (inputs.shape[i] or tf.shape(inputs)[i] for i in range(2))
    projected = tf.matmul(tf.reshape(inputs, [-1, inputs.shape[-1]]), kernel)
    if bias is not None:
        projected = _add_bias(projected, bias)
    return tf.reshape(projected, [steps, batch, kernel.shape[-1]])


@tf.custom_gradient
def _add_bias(projected, bias):
    """projected + bias, whose bias gradient is a matmul (see `column_sums`)."""
    return tf.nn.bias_add(projected, bias), lambda d: (d, column_sums(d))


def column_sums(d):
    """sum over every axis but the last, as ones @ d: the matmul kernel uses both
    cores, where the reduction kernels (BiasAddGrad, Sum) measured ~10x slower
    on (time*batch, gates*units) gradients."""
    d_2d = tf.reshape(d, [-1, tf.shape(d)[-1]])
    return tf.matmul(tf.ones([1, tf.shape(d_2d)[0]], d.dtype), d_2d)[0]


def summed_outer_product(left, right):
    """sum_t left_t^T right_t as one (features, time*batch) x (time*batch, width) matmul."""
    left_2d = tf.reshape(left, [-1, tf.shape(left)[-1]])
    right_2d = tf.reshape(right, [-1, tf.shape(right)[-1]])
    return tf.matmul(left_2d, right_2d, transpose_a=True)


def or_zeros(gradient, like):
    """Upstream gradients of unused outputs may arrive as None."""
    return tf.zeros_like(like) if gradient is None else gradient
