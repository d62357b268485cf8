"""The gradient probe against finite differences, T separate tape passes through
the fast layers' hand-written BPTT, and Jacobians formed step by step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab.diagnostics.gradient_probe import probe_gradients
from keras_rnn_lab.training import initialisation, recurrent_layer

CELLS = ("simple_rnn", "lstm", "gru")
BATCH, STEPS, FEATURES, UNITS = 2, 6, 3, 4


def _tiny_layer(cell, rng, **kwargs):
    """A float64 layer of ours with random weights large enough to matter."""
    layer = recurrent_layer(cell, UNITS, dtype="float64", **kwargs)
    layer.build((None, None, FEATURES))
    layer.set_weights([rng.normal(scale=0.6, size=w.shape) for w in layer.get_weights()])
    return layer


def _twin(layer, cell):
    """The same weights in a layer that returns its final state and takes an initial one."""
    twin = recurrent_layer(cell, UNITS, dtype="float64", return_state=True)
    twin.build((None, None, FEATURES))
    twin.set_weights(layer.get_weights())
    return twin


def _loss(outputs):
    # Not a plain sum: weights every unit differently so no symmetry hides an error.
    return tf.reduce_sum(tf.sin(outputs) * tf.range(1, UNITS + 1, dtype=outputs.dtype))


def _run_from(twin, x, k, state):
    """The loss of the last step, running from the state after step k onwards."""
    if k == x.shape[1] - 1:
        return _loss(state[0])
    _, *final = twin(x[:, k + 1 :], initial_state=state, training=True)  # training: the hand-written BPTT
    return _loss(final[0])


def _state_after(twin, x, k):
    _, *state = twin(x[:, : k + 1])
    return state


@pytest.mark.parametrize("cell", CELLS)
def test_input_gradients_equal_finite_differences_and_the_layers_own_bptt(cell, rng):
    layer = _tiny_layer(cell, rng)
    x = rng.normal(size=(BATCH, STEPS, FEATURES))
    probe = probe_gradients(layer, x, loss=_loss)

    def loss_of(inputs):
        return float(_loss(layer(inputs)))

    eps = 1e-6
    numeric = np.zeros_like(x)
    for index in np.ndindex(*x.shape):
        step = np.zeros_like(x)
        step[index] = eps
        numeric[index] = (loss_of(x + step) - loss_of(x - step)) / (2 * eps)
    np.testing.assert_allclose(probe.input_gradients, numeric, rtol=1e-6, atol=1e-9)
    # One tape through the fast layer (its custom gradient) gives the same.
    inputs = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        value = _loss(layer(inputs, training=True))
    np.testing.assert_allclose(probe.input_gradients, tape.gradient(value, inputs).numpy(), rtol=1e-9, atol=1e-12)
    assert probe.loss == pytest.approx(float(value), rel=1e-12)


@pytest.mark.parametrize("cell", CELLS)
def test_state_gradients_equal_t_separate_tapes_and_finite_differences(cell, rng):
    layer = _tiny_layer(cell, rng)
    twin = _twin(layer, cell)
    x = tf.constant(rng.normal(size=(BATCH, STEPS, FEATURES)))
    probe = probe_gradients(layer, x, loss=_loss)
    names = ["h", "c"] if cell == "lstm" else ["h"]
    assert sorted(probe.state_gradients) == sorted(names)
    for k in range(STEPS):  # one tape pass per step: the reference the probe replaces
        state = _state_after(twin, x, k)
        with tf.GradientTape() as tape:
            tape.watch(state)
            value = _run_from(twin, x, k, state)
        for name, gradient in zip(names, tape.gradient(value, state, unconnected_gradients="zero")):
            np.testing.assert_allclose(probe.state_gradients[name][:, k], gradient.numpy(), rtol=1e-9, atol=1e-12)
    # Finite differences on the state after the middle step, unit 1 of example 0.
    k, eps = STEPS // 2, 1e-6
    state = [s.numpy() for s in _state_after(twin, x, k)]
    for i, name in enumerate(names):
        bump = np.zeros_like(state[i])
        bump[0, 1] = eps
        up = [s + bump if j == i else s for j, s in enumerate(state)]
        down = [s - bump if j == i else s for j, s in enumerate(state)]
        numeric = (float(_run_from(twin, x, k, up)) - float(_run_from(twin, x, k, down))) / (2 * eps)
        assert probe.state_gradients[name][0, k, 1] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("cell", ("simple_rnn", "lstm"))
def test_jacobian_norms_equal_jacobians_taken_step_by_step(cell, rng):
    layer = _tiny_layer(cell, rng)
    twin = _twin(layer, cell)
    x = tf.constant(rng.normal(size=(BATCH, STEPS, FEATURES)))
    probe = probe_gradients(layer, x, loss=_loss)
    expected_products, expected_steps = [], []
    for k in range(STEPS):
        state = _state_after(twin, x, k)
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(state)
            start = tf.concat(state, -1)
            final = tf.concat(twin(x[:, k + 1 :], initial_state=state)[1:], -1) if k < STEPS - 1 else start
            following = tf.concat(twin(x[:, k + 1 : k + 2], initial_state=state)[1:], -1) if k < STEPS - 1 else None
        # d final / d state, as (batch, S, S) blocks assembled per state component.
        product = np.concatenate([tape.batch_jacobian(final, s).numpy() for s in state], axis=-1)
        expected_products.append(np.linalg.norm(product, ord=2, axis=(-2, -1)).mean())
        if following is not None:
            step = np.concatenate([tape.batch_jacobian(following, s).numpy() for s in state], axis=-1)
            expected_steps.append(np.linalg.norm(step, ord=2, axis=(-2, -1)).mean())
    np.testing.assert_allclose(probe.jacobian_norms, expected_products, rtol=1e-8)
    np.testing.assert_allclose(probe.step_jacobian_norms[1:], expected_steps, rtol=1e-8)
    assert probe.jacobian_norms[-1] == pytest.approx(1.0)


def test_model_probe_equals_a_tape_through_the_model(rng):
    """Embedding -> our LSTM (sequences) -> Dense: the loss of the last step's logits."""
    tokens = rng.integers(0, 7, size=(3, 9))
    targets = tf.constant([0, 2, 1])
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(7, 5),
            recurrent_layer("lstm", 6, return_sequences=True),
            keras.layers.Dense(3),
        ]
    )

    def loss(logits):
        return tf.reduce_sum(keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True))

    probe = probe_gradients(model, tokens, loss=loss, jacobians=False)
    embedded = model.layers[0](tokens)
    with tf.GradientTape() as tape:
        tape.watch(embedded)
        value = loss(model.layers[2](model.layers[1](embedded, training=True))[:, -1])
    np.testing.assert_allclose(probe.input_gradients, tape.gradient(value, embedded).numpy(), rtol=1e-4, atol=1e-7)
    assert probe.loss == pytest.approx(float(value), rel=1e-5)
    assert np.isnan(probe.jacobian_norms).all()


@pytest.mark.parametrize("cell", CELLS)
def test_ours_and_keras_builtin_probe_the_same(cell, rng):
    x = rng.normal(size=(2, 20, 3)).astype("float32")
    ours = recurrent_layer(cell, 8, **initialisation(cell, "lecture", seed=3))
    builtin = recurrent_layer(cell, 8, builtin=True)
    ours(x), builtin(x)
    builtin.set_weights(ours.get_weights())
    a, b = probe_gradients(ours, x), probe_gradients(builtin, x)
    np.testing.assert_allclose(a.input_gradients, b.input_gradients, rtol=1e-4, atol=1e-12)
    np.testing.assert_allclose(a.state_norms("h"), b.state_norms("h"), rtol=1e-4)
    np.testing.assert_allclose(a.jacobian_norms, b.jacobian_norms, rtol=1e-4)


def test_bad_targets_and_arguments_are_named(rng):
    x = rng.normal(size=(2, 4, 3)).astype("float32")
    with pytest.raises(TypeError, match="`target` must be a recurrent layer"):
        probe_gradients(keras.layers.Dense(3), x)
    wrapped = keras.Sequential([keras.Input((None, 3)), keras.layers.Bidirectional(recurrent_layer("gru", 2))])
    with pytest.raises(ValueError, match="exactly one recurrent layer.*Bidirectional"):
        probe_gradients(wrapped, x)
    with pytest.raises(ValueError, match="go_backwards=True"):
        probe_gradients(recurrent_layer("lstm", 2, go_backwards=True), x)
    with pytest.raises(TypeError, match="`loss` must be a callable"):
        probe_gradients(recurrent_layer("lstm", 2), x, loss="mse")
    probe = probe_gradients(recurrent_layer("lstm", 2), x)
    with pytest.raises(ValueError, match="`name` must be one of \\['c', 'h'\\]; received 'x'"):
        probe.state_norms("x")
    with pytest.raises(ValueError, match="`distance` must be an int in \\[0, 3\\]; received 4"):
        probe.ratio(probe.input_norms(), 4)


def test_model_ending_in_the_last_state_equals_a_tape_through_the_model(rng):
    """Embedding -> our GRU (last state only) -> Dense, the long_memory shape."""
    tokens = rng.integers(0, 5, size=(4, 12))
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(5, 3),
            recurrent_layer("gru", 4),
            keras.layers.Dense(2),
        ]
    )
    probe = probe_gradients(model, tokens)  # default loss: the sum of the logits
    embedded = model.layers[0](tokens)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(embedded)
        value = tf.reduce_sum(model.layers[2](model.layers[1](embedded, training=True)))
    np.testing.assert_allclose(probe.input_gradients, tape.gradient(value, embedded).numpy(), rtol=1e-4, atol=1e-7)
    # dL/dh_T is the Dense kernel's row sums, the same for every sequence.
    row_sums = model.layers[2].kernel.numpy().sum(axis=1)
    np.testing.assert_allclose(probe.state_gradients["h"][:, -1], np.tile(row_sums, (4, 1)), rtol=1e-5)
