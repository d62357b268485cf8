"""Backpropagation through time made visible: how much of the error at the last
step reaches each earlier step.

BPTT sums one gradient per step; the part that reaches step k from an error at
step T has been multiplied by every step Jacobian in between,

    dL_T/ds_k = dL_T/ds_T  J_T J_{T-1} ... J_{k+1},     J_t = ds_t/ds_{t-1},

and through tanh with small weights that product shrinks exponentially in
T - k (the vanishing gradient).  For an LSTM the state is s = (h, C) and
dC_t/dC_{t-1} = f_t, so a forget gate near 1 keeps the product alive.

`probe_gradients(target, inputs, loss=None)` measures it for a recurrent layer
(ours or Keras's) or a model holding one.  It steps the layer's own cell over
time, adding a zero "probe" tensor to the state after every step, so that one
tape pass gives, for every step k at once,

    input_gradients   dL_T/dx_k    (batch, T, features)  x: the layer's input sequence
    state_gradients   dL_T/ds_k    {"h": (batch, T, units), and "c" for an LSTM}

where L_T is `loss` of the output at the last step alone (default: the sum of
its entries).  It also forms every step Jacobian J_k (one vectorised Jacobian
over all steps) and their products P_k = ds_T/ds_k, reporting spectral norms.
The fast layers' hand-written BPTT is not used (the cell has no custom
gradient); the tests check the probe against the layer's own gradient, finite
differences and T separate tape passes.

Limits: no masking or padding (every step counts), no `go_backwards`, no
Bidirectional wrapper, a zero initial state, inference mode (no dropout).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf  # GradientTape and batch_jacobian: the probe is TensorFlow-only


@dataclasses.dataclass
class GradientProbe:
    """What `probe_gradients` measured.  Step k = 0 .. T-1; distance = T-1-k."""

    loss: float
    input_gradients: np.ndarray  # (batch, T, features) dL_T/dx_k
    state_gradients: dict  # name -> (batch, T, size) dL_T/ds_k: "h", plus "c" for the LSTM
    step_jacobian_norms: np.ndarray  # (T,) mean over the batch of ||ds_k/ds_{k-1}||_2 (k = 0: w.r.t. the initial state)
    jacobian_norms: np.ndarray  # (T,) mean over the batch of ||ds_{T-1}/ds_k||_2 (1 at k = T-1)

    @property
    def steps(self):
        return self.input_gradients.shape[1]

    def input_norms(self):
        """(T,) ||dL_T/dx_k|| over batch and features, per step k."""
        return _step_norms(self.input_gradients)

    def state_norms(self, name="h"):
        """(T,) ||dL_T/ds_k|| over batch and units for the state `name` ("h" or "c")."""
        if name not in self.state_gradients:
            raise ValueError(f"Argument `name` must be one of {sorted(self.state_gradients)}; received {name!r}.")
        return _step_norms(self.state_gradients[name])

    def ratio(self, norms, distance=None):
        """norms at `distance` steps before the last (default: the first step)
        divided by norms at distance 0; inf where that is 0 (an LSTM's "c":
        the loss reads h_T only, so dL/dC_T = 0)."""
        norms = np.asarray(norms, dtype="float64")
        distance = self.steps - 1 if distance is None else distance
        if isinstance(distance, bool) or not isinstance(distance, (int, np.integer)) or not 0 <= distance < self.steps:
            raise ValueError(f"Argument `distance` must be an int in [0, {self.steps - 1}]; received {distance!r}.")
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(norms[-1 - distance] / norms[-1])


def _step_norms(gradients):
    return np.sqrt(np.sum(np.square(gradients, dtype="float64"), axis=(0, 2)))


def default_loss(outputs):
    """The probe's loss when none is given: the sum of the last step's outputs."""
    return keras.ops.sum(outputs)


def probe_gradients(target, inputs, loss=None, jacobians=True):
    """Measure how the gradient of the last step's loss spreads back over time.

    target: a built recurrent layer (`keras.layers.RNN` or a subclass: ours or
        Keras's SimpleRNN/LSTM/GRU), or a model holding exactly one such layer.
        For a model, the layers before the recurrent one make its input
        sequence x (an Embedding, say), and the layers after it are applied to
        its output (the whole sequence with `return_sequences`, else h_T).
    inputs: the layer's input sequence (batch, T, features), or the model's input.
    loss: callable(outputs) -> scalar, where outputs is the output at the last
        step: h_T for a layer, the model's output at the last step (its last
        time step when the model returns sequences).  Default: the sum.
    jacobians: also form the step Jacobians and their products (cost grows
        with the state size squared).
    Returns a `GradientProbe`.
    """
    layer, before, after = _split(target)
    loss = default_loss if loss is None else loss
    if not callable(loss):
        raise TypeError(f"Argument `loss` must be a callable (outputs) -> scalar; received {loss!r}.")
    sequence = tf.convert_to_tensor(before(inputs) if before is not None else inputs)
    if sequence.shape.rank != 3:
        raise ValueError(
            f"The recurrent layer's input must be (batch, time, features); received shape {tuple(sequence.shape)}."
        )
    if not layer.built:
        layer(sequence)
    cell = layer.cell
    steps = sequence.shape[1]
    if not steps:
        raise ValueError(f"Argument `inputs` must have at least one time step; received shape {tuple(sequence.shape)}.")
    batch = sequence.shape[0]
    initial = [tf.convert_to_tensor(s) for s in tf.nest.flatten(cell.get_initial_state(batch))]
    names = ["h", "c"] if len(initial) == 2 else ["h"] if len(initial) == 1 else [f"s{i}" for i in range(len(initial))]
    with tf.GradientTape() as tape:
        tape.watch(sequence)
        # One zero tensor per state and step: its gradient is dL/ds_k.
        probes = [tf.zeros((steps,) + tuple(s.shape), s.dtype) for s in initial]  # (T, batch, size) each
        tape.watch(probes)
        states, kept, outputs = initial, [], []
        for k in range(steps):
            kept.append(states)  # s_{k-1}, for the step Jacobians
            _, states = cell(sequence[:, k], states, training=False)
            states = [s + p[k] for s, p in zip(tf.nest.flatten(states), probes)]
            outputs.append(states[0])  # every Keras cell's output is its first state, h_k
        value = loss(_apply_head(layer, after, outputs))
    input_gradients, state_grads = tape.gradient(value, [sequence, probes])
    state_gradients = {
        name: np.transpose(g.numpy(), (1, 0, 2))
        for name, g in zip(names, state_grads)  # (batch, T, size)
    }
    step_norms = products = np.full(steps, np.nan)
    if jacobians:
        step_norms, products = _jacobian_norms(cell, sequence, kept)
    return GradientProbe(float(value), input_gradients.numpy(), state_gradients, step_norms, products)


def _apply_head(layer, after, outputs):
    """The model's output at the last step from the probed h_k (the layer's output at k)."""
    if layer.return_sequences:
        sequence = tf.stack(outputs, axis=1)  # (batch, T, units)
        y = sequence if after is None else after(sequence)
        return y[:, -1] if len(y.shape) == 3 else y
    return outputs[-1] if after is None else after(outputs[-1])


def _jacobian_norms(cell, sequence, kept):
    """Spectral norms of J_k = ds_k/ds_{k-1} and of P_k = ds_{T-1}/ds_k, mean over the batch."""
    steps, batch = sequence.shape[1], sequence.shape[0]
    sizes = [s.shape[-1] for s in kept[0]]
    # Every step at once: time folded into the batch, (T*batch, ...).
    x = tf.reshape(tf.transpose(sequence, (1, 0, 2)), (steps * batch, -1))
    previous = tf.stack([tf.concat(states, -1) for states in kept])  # (T, batch, S): s_{k-1}
    previous = tf.reshape(previous, (steps * batch, sum(sizes)))
    with tf.GradientTape() as tape:
        tape.watch(previous)
        _, new = cell(x, list(tf.split(previous, sizes, axis=-1)), training=False)
        new = tf.concat(tf.nest.flatten(new), axis=-1)
    step = tape.batch_jacobian(new, previous).numpy().astype("float64")  # (T*batch, S, S)
    step = step.reshape(steps, batch, sum(sizes), sum(sizes))
    products = np.empty_like(step)
    products[-1] = np.eye(sum(sizes))
    for k in range(steps - 2, -1, -1):  # P_k = P_{k+1} J_{k+1}
        products[k] = products[k + 1] @ step[k + 1]
    spectral = lambda m: np.linalg.norm(m, ord=2, axis=(-2, -1)).mean(axis=-1)  # noqa: E731
    return spectral(step), spectral(products)


def _split(target):
    """(recurrent layer, model before it or None, layers after it or None)."""
    if isinstance(target, keras.layers.RNN) and not isinstance(target, keras.Model):
        _check_layer(target)
        return target, None, None
    if not isinstance(target, keras.Model):
        raise TypeError(
            f"Argument `target` must be a recurrent layer (keras.layers.RNN) or a keras.Model holding one; "
            f"received {type(target).__name__}."
        )
    recurrent = [layer for layer in target.layers if isinstance(layer, keras.layers.RNN)]
    if len(recurrent) != 1:
        raise ValueError(
            "Argument `target` must hold exactly one recurrent layer (keras.layers.RNN, not wrapped); received layers "
            f"{[type(layer).__name__ for layer in target.layers]}."
        )
    layer = recurrent[0]
    _check_layer(layer)
    inputs = target.inputs[0] if len(target.inputs) == 1 else target.inputs
    before = keras.Model(inputs, layer.input)
    after = keras.Model(layer.output, target.outputs[0])
    return layer, before, after


def _check_layer(layer):
    if layer.go_backwards:
        raise ValueError(f"probe_gradients steps forward in time; received {layer.name!r} with go_backwards=True.")
    if layer.return_state:
        raise ValueError(
            f"probe_gradients needs a layer without return_state; received {layer.name!r} with return_state=True."
        )
