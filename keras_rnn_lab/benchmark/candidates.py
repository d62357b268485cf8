"""What the benchmark times: the Keras built-ins, `RNN(our cell)`, our fast
layers and (when installed) PyTorch, each as a (train step, inference) pair."""

import contextlib
import dataclasses

import keras
import tensorflow as tf

import keras_rnn_lab
from keras_rnn_lab.layers import compiled
from keras_rnn_lab.layers.compiled import build

SHAPES = {
    "small": (32, 50, 32, 128),
    "reference": (64, 100, 64, 256),
    "large": (64, 200, 128, 512),
}

CELLS = {
    "simple_rnn": (keras.layers.SimpleRNN, keras_rnn_lab.SimpleRNNCell, keras_rnn_lab.SimpleRNN),
    "lstm": (keras.layers.LSTM, keras_rnn_lab.LSTMCell, keras_rnn_lab.LSTM),
    "gru": (keras.layers.GRU, keras_rnn_lab.GRUCell, keras_rnn_lab.GRU),
}

BUILTIN = "keras built-in"  # the reference every "x built-in" ratio divides by
TORCH = "torch"  # torch.nn.RNN / LSTM / GRU, timed in its own process (torch_peer)
# Our layer traced on TensorFlow ops only (`compiled.plain_tensorflow_ops`), beside
# "keras_rnn_lab" on the compiled kernels, where those could be built.
TF_OPS = "keras_rnn_lab (TF ops)"


@dataclasses.dataclass
class Row:
    """A candidate's medians over the rounds and its ratios to the built-in and
    to torch: each the median over rounds of that round's ratio (> 1: faster),
    with the rounds' (min, max); None where torch was not timed."""

    cell: str
    shape: str
    candidate: str
    train_ms: float
    infer_ms: float
    train_speedup: float = 1.0
    infer_speedup: float = 1.0
    train_speedup_range: tuple = (1.0, 1.0)
    infer_speedup_range: tuple = (1.0, 1.0)
    train_vs_torch: float = None
    infer_vs_torch: float = None
    train_vs_torch_range: tuple = None
    infer_vs_torch_range: tuple = None
    train_rounds_ms: list = dataclasses.field(default_factory=list)  # every round's time, in order
    infer_rounds_ms: list = dataclasses.field(default_factory=list)


def keras_candidates(cell, units):
    builtin, cell_class, fast = CELLS[cell]
    candidates = {
        BUILTIN: builtin(units),
        "RNN(our cell)": keras.layers.RNN(cell_class(units)),
        "keras_rnn_lab": fast(units),
    }
    if build.load()[1] is None:
        candidates[TF_OPS] = fast(units)
    return candidates


def keras_steps(layer, x, y, plain_ops=False):
    """Compiled training step (forward, MSE, gradients, SGD update) and inference;
    `plain_ops`: traced on TensorFlow's own ops (no compiled kernels)."""
    tracing = compiled.plain_tensorflow_ops if plain_ops else contextlib.nullcontext
    with tracing():
        layer(x)
    optimizer = keras.optimizers.SGD(1e-6)
    optimizer.build(layer.trainable_variables)

    @tf.function
    def train():
        with tracing(), tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, training=True) - y))
        optimizer.apply(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables)
        return loss

    @tf.function
    def infer():
        with tracing():
            return layer(x, training=False)

    return lambda: train().numpy(), lambda: infer().numpy()


def shape_of(name):
    """A named shape, or "BxTxFxU" (batch x time x features x units), or None."""
    if name in SHAPES:
        return SHAPES[name]
    parts = name.split("x")
    if len(parts) == 4 and all(p.isdigit() and int(p) > 0 for p in parts):
        return tuple(int(p) for p in parts)
    return None
