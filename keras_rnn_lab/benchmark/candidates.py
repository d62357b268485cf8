"""What the benchmark times: the Keras built-ins, `RNN(our cell)`, our fast
layers and (when installed) PyTorch, each as a (train step, inference) pair."""

import dataclasses

import keras
import tensorflow as tf

import keras_rnn_lab

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

TORCH_MODULES = {"simple_rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}
# Gate blocks per cell: the width of its matmuls is gates * units.


@dataclasses.dataclass
class Row:
    cell: str
    shape: str
    candidate: str
    train_ms: float
    infer_ms: float
    train_speedup: float = 1.0
    infer_speedup: float = 1.0


def keras_candidates(cell, units):
    builtin, cell_class, fast = CELLS[cell]
    return {
        "keras built-in": builtin(units),
        "RNN(our cell)": keras.layers.RNN(cell_class(units)),
        "keras_rnn_lab": fast(units),
    }


def keras_steps(layer, x, y):
    """Compiled training step (forward, MSE, gradients, SGD update) and inference."""
    layer(x)
    optimizer = keras.optimizers.SGD(1e-6)
    optimizer.build(layer.trainable_variables)

    @tf.function
    def train():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(layer(x, training=True) - y))
        optimizer.apply(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables)
        return loss

    @tf.function
    def infer():
        return layer(x, training=False)

    return lambda: train().numpy(), lambda: infer().numpy()


def torch_steps(cell, x, y):
    import torch

    batch, _, features = x.shape
    module = getattr(torch.nn, TORCH_MODULES[cell])(features, y.shape[-1], batch_first=True)
    optimizer = torch.optim.SGD(module.parameters(), lr=1e-6)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)

    def last_output():
        out, _ = module(tx)
        return out[:, -1]

    def train():
        optimizer.zero_grad()
        loss = ((last_output() - ty) ** 2).mean()
        loss.backward()
        optimizer.step()
        return loss.item()

    def infer():
        with torch.no_grad():
            return last_output().numpy()

    return train, infer


# Long enough for PyTorch's spinning OpenMP threads to go to sleep before the
# next TensorFlow timing.

TORCH_SPIN_SECONDS = 1.0


def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def shape_of(name):
    """A named shape, or "BxTxFxU" (batch x time x features x units), or None."""
    if name in SHAPES:
        return SHAPES[name]
    parts = name.split("x")
    if len(parts) == 4 and all(p.isdigit() and int(p) > 0 for p in parts):
        return tuple(int(p) for p in parts)
    return None
