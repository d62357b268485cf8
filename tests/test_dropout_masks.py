"""Dropout in our cells: masks drawn once per batch, the same at every step.

keras_rnn_lab/cells/dropout_masks.py is shared by the three cells, so every test runs
for every kind of cell unless it needs the linear SimpleRNN to read masks off
the outputs.
"""

import keras
import numpy as np
import pytest
import rnn_reference as ref

import keras_rnn_lab

ALL_KINDS = list(ref.KINDS)
RATE = 0.5
KEEP_SCALE = 1.0 / (1.0 - RATE)  # value of a kept unit in a mask


def _sequences(rng):
    return rng.normal(size=(ref.BATCH, ref.TIME, ref.FEATURES)).astype("float32")


def _layers_with_same_weights(kind, rng, sequences, *cell_kwargs):
    """One RNN(our cell) layer per dict of cell kwargs, sharing random weights."""
    layers = [keras.layers.RNN(ref.our_cell(kind, kwargs), return_sequences=True) for kwargs in cell_kwargs]
    for layer in layers:
        layer(sequences)
    weights = ref.random_weights(layers[0], rng)
    for layer in layers:
        layer.set_weights(weights)
    return layers


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_inference_with_dropout_equals_no_dropout(kind, rng):
    x = _sequences(rng)
    with_dropout, without = _layers_with_same_weights(kind, rng, x, {"dropout": RATE, "recurrent_dropout": RATE}, {})
    expected = np.asarray(without(x))
    np.testing.assert_array_equal(with_dropout(x, training=False), expected)
    np.testing.assert_array_equal(with_dropout(x), expected)  # training defaults to off


@pytest.mark.parametrize(
    "rates", [{"dropout": RATE}, {"recurrent_dropout": RATE}], ids=["dropout", "recurrent_dropout"]
)
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_training_applies_dropout_and_redraws_masks_per_batch(kind, rates, rng):
    x = _sequences(rng)
    (layer,) = _layers_with_same_weights(kind, rng, x, rates)
    inference = np.asarray(layer(x, training=False))
    first = np.asarray(layer(x, training=True))
    second = np.asarray(layer(x, training=True))
    assert np.abs(first - inference).max() > 1e-3
    # A new batch draws new masks (the previous call's masks were released).
    assert np.abs(second - first).max() > 1e-3


def _linear_identity_rnn(units, **cell_kwargs):
    """RNN over s_t = x_t U + s_{t-1} W with U = I, W = I (or 0), no bias."""
    cell = keras_rnn_lab.SimpleRNNCell(
        units,
        activation="linear",
        use_bias=False,
        kernel_initializer="identity",
        **cell_kwargs,
    )
    return keras.layers.RNN(cell, return_sequences=True)


def test_input_mask_drops_the_same_units_at_every_step(rng):
    # W = 0, U = I, linear: s_t = x_t * m.  With x_t the same at every step, a
    # mask that stays constant across time gives identical s_t at every step.
    units = ref.FEATURES
    layer = _linear_identity_rnn(units, recurrent_initializer="zeros", dropout=RATE, seed=3)
    x_step = rng.normal(size=(ref.BATCH, 1, units)).astype("float32")
    x = np.repeat(x_step, ref.TIME, axis=1)

    outputs = np.asarray(layer(x, training=True))  # (batch, time, units)

    np.testing.assert_allclose(layer(x, training=False), x, rtol=0, atol=1e-6)
    mask = outputs[:, 0] / x_step[:, 0]
    np.testing.assert_allclose(np.unique(np.round(mask, 5)), [0.0, KEEP_SCALE])  # units dropped and kept
    for t in range(1, ref.TIME):
        np.testing.assert_array_equal(outputs[:, t], outputs[:, 0], err_msg=f"step {t} used another mask")


def test_recurrent_mask_drops_the_same_units_at_every_step(rng):
    # U = W = I, linear, input only at step 0: s_0 = x_0, s_t = (s_{t-1} * m) W,
    # so s_t = x_0 * m**t exactly when the recurrent mask m is constant in time.
    units = ref.FEATURES
    layer = _linear_identity_rnn(units, recurrent_initializer="identity", recurrent_dropout=RATE, seed=3)
    x = np.zeros((ref.BATCH, ref.TIME, units), "float32")
    x[:, 0] = rng.uniform(0.5, 1.5, size=(ref.BATCH, units))

    outputs = np.asarray(layer(x, training=True))

    mask = outputs[:, 1] / x[:, 0]
    np.testing.assert_allclose(np.unique(np.round(mask, 5)), [0.0, KEEP_SCALE])
    for t in range(ref.TIME):
        np.testing.assert_allclose(outputs[:, t], x[:, 0] * mask**t, rtol=1e-6, err_msg=f"step {t}")


def _spying(cell_class):
    """`cell_class` recording x_t, h_{t-1} before and after its dropout masks."""

    class Spy(cell_class):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.seen = []

        def masked_step_inputs(self, inputs, h_prev, training):
            x, h = super().masked_step_inputs(inputs, h_prev, training)
            self.seen.append([np.asarray(v) for v in (inputs, x, h_prev, h)])
            return x, h

    return Spy


def _constant_mask(originals, dropped):
    """Per unit, dropped / original at the first step where the original is non-zero."""
    originals, dropped = np.stack(originals), np.stack(dropped)  # (records, batch, n)
    known = originals != 0
    first = np.argmax(known, axis=0)[np.newaxis]  # first record with a non-zero value
    numerator = np.take_along_axis(dropped, first, axis=0)[0]
    denominator = np.take_along_axis(originals, first, axis=0)[0]
    mask = np.where(known.any(axis=0), numerator / np.where(denominator == 0, 1, denominator), 0)
    return originals, dropped, mask


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_step_of_a_batch_uses_the_same_masks(kind, rng):
    spy_class = _spying(getattr(keras_rnn_lab, ref.KINDS[kind].cell))
    cell = spy_class(**ref.cell_arguments(kind, {"dropout": RATE, "recurrent_dropout": RATE}))
    layer = keras.layers.RNN(cell)
    layer(_sequences(rng), training=True)
    # Eager run: one record per step (TF's loop also runs step 0 once more, to
    # learn the output's shape).
    assert len(cell.seen) >= ref.TIME
    records = list(zip(*cell.seen))  # x_t, x_t dropped, h_{t-1}, h_{t-1} dropped
    for name, original, dropped in [("input", records[0], records[1]), ("recurrent", records[2], records[3])]:
        original, dropped, mask = _constant_mask(original, dropped)
        # Multiplying by 0 or by 1/(1-rate) = 2 is exact in float32.
        np.testing.assert_array_equal(dropped, original * mask, err_msg=f"{name} mask changed between steps")
        assert set(np.round(mask, 5).ravel()) == {0.0, KEEP_SCALE}, f"{name} mask values"


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_seed_makes_training_outputs_reproducible(kind, rng):
    x = _sequences(rng)
    rates = {"dropout": RATE, "recurrent_dropout": RATE}
    first, second, other_seed = _layers_with_same_weights(
        kind, rng, x, {**rates, "seed": 7}, {**rates, "seed": 7}, {**rates, "seed": 8}
    )

    expected = np.asarray(first(x, training=True))
    np.testing.assert_array_equal(second(x, training=True), expected)
    assert np.abs(np.asarray(other_seed(x, training=True)) - expected).max() > 1e-3


# With dropout on x_t only, Keras's built-in cells draw one mask per batch from
# their `seed` exactly as ours do (with recurrent dropout their LSTM and GRU
# switch to one mask per gate, a different scheme), so training outputs and
# gradients must match the built-in cell's.
_TRAINING = {"layer": {"return_sequences": True, "return_state": True}, "training": True}
SAME_SEED_CASES = [
    {"id": "dropout", "cell": {"dropout": RATE, "seed": 11}, **_TRAINING},
    {"id": "dropout_stacked_cells", "cell": {"dropout": RATE, "seed": 11}, "stacked": "cells", **_TRAINING},
    {"id": "dropout_bidirectional", "cell": {"dropout": RATE, "seed": 11}, "bidirectional": "concat", **_TRAINING},
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["id"]) for c in SAME_SEED_CASES])
@pytest.mark.parametrize("kind", ALL_KINDS)
def test_training_with_input_dropout_matches_builtin_cell_with_the_same_seed(kind, case):
    ref.check_case(kind, case, make_ours=ref.our_rnn)


@pytest.mark.parametrize("kind", ref.kinds_of("SimpleRNNCell"))
def test_simple_rnn_training_with_both_dropouts_matches_builtin_cell_with_the_same_seed(kind):
    # Keras's SimpleRNNCell uses one recurrent mask too, so here both rates compare.
    case = {"id": "both_dropouts", "cell": {"dropout": RATE, "recurrent_dropout": RATE, "seed": 11}, **_TRAINING}
    ref.check_case(kind, case, make_ours=ref.our_rnn)
