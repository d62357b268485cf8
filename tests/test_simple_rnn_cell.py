"""keras_rnn_lab.SimpleRNNCell: s_t = f(x_t U + s_{t-1} W + b)."""

import keras
import numpy as np
import numpy_reference
import pytest
import rnn_reference as ref

import keras_rnn_lab


@pytest.mark.parametrize("case", ref.case_params())
@pytest.mark.parametrize("kind", ref.kinds_of("SimpleRNNCell"))
def test_rnn_of_cell_matches_builtin_cell(kind, case):
    ref.check_case(kind, case, make_ours=ref.our_rnn)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_matches_numpy_lecture_equation(activation, rng):
    cell = keras_rnn_lab.SimpleRNNCell(ref.UNITS, activation=activation)
    ref.check_cell_against_numpy(cell, numpy_reference.simple_rnn_step, rng, n_states=1, activation=activation)


def test_default_activation_is_tanh(rng):
    cell = keras_rnn_lab.SimpleRNNCell(ref.UNITS)
    ref.check_cell_against_numpy(cell, numpy_reference.simple_rnn_step, rng, n_states=1, activation="tanh")


def test_state_given_as_a_single_tensor(rng):
    # Keras cells accept the state as a tensor or a one-element list and answer alike.
    cell = keras_rnn_lab.SimpleRNNCell(ref.UNITS)
    x = rng.normal(size=(ref.BATCH, ref.FEATURES)).astype("float32")
    s_prev = rng.normal(size=(ref.BATCH, ref.UNITS)).astype("float32")
    from_list, list_states = cell(x, [s_prev])
    from_tensor, tensor_state = cell(x, s_prev)
    assert isinstance(list_states, list) and len(list_states) == 1
    np.testing.assert_array_equal(from_tensor, from_list)
    np.testing.assert_array_equal(tensor_state, list_states[0])
    # and the step really used s_prev
    from_zeros, _ = cell(x, [np.zeros_like(s_prev)])
    assert not np.allclose(from_zeros, from_list, atol=1e-3)


def test_relu_cell_outputs_are_non_negative_and_some_zero(rng):
    layer = keras.layers.RNN(keras_rnn_lab.SimpleRNNCell(ref.UNITS, activation="relu"), return_sequences=True)
    outputs = np.asarray(layer(rng.normal(size=(ref.BATCH, ref.TIME, ref.FEATURES)).astype("float32")))
    assert outputs.min() >= 0.0
    assert (outputs == 0.0).any() and (outputs > 0.0).any()
