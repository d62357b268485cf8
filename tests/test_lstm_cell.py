"""keras_rnn_lab.LSTMCell: gates i, f, C~, o; C_t = f C_{t-1} + i C~; h_t = o tanh(C_t)."""

import keras
import numpy as np
import numpy_reference
import pytest
import rnn_reference as ref

import keras_rnn_lab


@pytest.mark.parametrize("case", ref.case_params())
def test_rnn_of_cell_matches_builtin_cell(case):
    ref.check_case("lstm", case, make_ours=ref.our_rnn)


def test_matches_numpy_lecture_equations(rng):
    cell = keras_rnn_lab.LSTMCell(ref.UNITS)
    ref.check_cell_against_numpy(cell, numpy_reference.lstm_step, rng, n_states=2)


def test_state_is_h_and_c_and_output_is_h(rng):
    cell = keras_rnn_lab.LSTMCell(ref.UNITS)
    assert list(cell.state_size) == [ref.UNITS, ref.UNITS]
    x = rng.normal(size=(ref.BATCH, ref.FEATURES)).astype("float32")
    states = [rng.normal(size=(ref.BATCH, ref.UNITS)).astype("float32") for _ in range(2)]
    h, (h_state, c_state) = cell(x, states)
    np.testing.assert_array_equal(h, h_state)
    assert not np.allclose(h_state, c_state, atol=1e-3)


def _built_bias(cell):
    keras.layers.RNN(cell)(np.zeros((ref.BATCH, ref.TIME, ref.FEATURES), "float32"))
    return np.asarray(cell.bias)


@pytest.mark.parametrize("bias_initializer", ["zeros", keras.initializers.Constant(0.25)])
def test_unit_forget_bias_puts_ones_in_the_forget_block_like_keras(bias_initializer):
    units = ref.UNITS
    ours = _built_bias(keras_rnn_lab.LSTMCell(units, unit_forget_bias=True, bias_initializer=bias_initializer))
    theirs = _built_bias(keras.layers.LSTMCell(units, unit_forget_bias=True, bias_initializer=bias_initializer))
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(ours[units : 2 * units], np.ones(units))  # block f
    other = keras.initializers.get(bias_initializer)((units,))
    for block in (0, 2, 3):  # blocks i, C~, o keep bias_initializer's values
        np.testing.assert_array_equal(ours[block * units : (block + 1) * units], other)


def test_unit_forget_bias_is_the_default_as_in_keras():
    np.testing.assert_array_equal(_built_bias(keras_rnn_lab.LSTMCell(ref.UNITS))[ref.UNITS : 2 * ref.UNITS], 1.0)


def test_without_unit_forget_bias_the_bias_is_bias_initializer():
    np.testing.assert_array_equal(_built_bias(keras_rnn_lab.LSTMCell(ref.UNITS, unit_forget_bias=False)), 0.0)
