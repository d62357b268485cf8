"""keras_rnn_lab.GRUCell (both reset_after modes, both update conventions)."""

import keras
import numpy as np
import numpy_reference
import pytest
import rnn_reference as ref

import keras_rnn_lab
from keras_rnn_lab import convert_gru_update_convention


@pytest.mark.parametrize("case", ref.case_params())
@pytest.mark.parametrize("kind", ref.kinds_of("GRUCell"))
def test_rnn_of_cell_matches_builtin_cell(kind, case):
    ref.check_case(kind, case, make_ours=ref.our_rnn)


@pytest.mark.parametrize("update_convention", ["keras", "lecture"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_matches_numpy_lecture_equations(reset_after, update_convention, rng):
    cell = keras_rnn_lab.GRUCell(ref.UNITS, reset_after=reset_after, update_convention=update_convention)
    ref.check_cell_against_numpy(
        cell,
        numpy_reference.gru_step,
        rng,
        n_states=1,
        reset_after=reset_after,
        update_convention=update_convention,
    )


def test_default_convention_is_keras_with_reset_after():
    cell = keras_rnn_lab.GRUCell(ref.UNITS)
    assert cell.update_convention == "keras"
    assert cell.reset_after is True
    keras.layers.RNN(cell)(np.zeros((ref.BATCH, ref.TIME, ref.FEATURES), "float32"))
    assert tuple(cell.bias.shape) == (2, 3 * ref.UNITS)


def _sequences_and_state(rng):
    x = rng.normal(size=(ref.BATCH, ref.TIME, ref.FEATURES)).astype("float32")
    h0 = rng.normal(size=(ref.BATCH, ref.UNITS)).astype("float32")
    return x, h0


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("reset_after", [True, False])
def test_lecture_convention_with_converted_weights_equals_keras_gru(reset_after, use_bias, rng):
    x, h0 = _sequences_and_state(rng)
    kwargs = {"reset_after": reset_after, "use_bias": use_bias}
    builtin = keras.layers.RNN(keras.layers.GRUCell(ref.UNITS, **kwargs), return_sequences=True, return_state=True)
    lecture = keras.layers.RNN(
        keras_rnn_lab.GRUCell(ref.UNITS, update_convention="lecture", **kwargs),
        return_sequences=True,
        return_state=True,
    )
    for layer in (builtin, lecture):
        layer(x)
    keras_weights = ref.random_weights(builtin, rng)
    builtin.set_weights(keras_weights)

    lecture.set_weights(keras_weights)  # not converted: another function
    unconverted, _ = lecture(x, initial_state=[h0])
    lecture.set_weights(convert_gru_update_convention(keras_weights))
    outputs, h_last = lecture(x, initial_state=[h0])
    expected_outputs, expected_h = builtin(x, initial_state=[h0])

    # sigma(-a) and 1 - sigma(a) differ by float32 rounding only.
    np.testing.assert_allclose(outputs, expected_outputs, rtol=0, atol=1e-6)
    np.testing.assert_allclose(h_last, expected_h, rtol=0, atol=1e-6)
    assert not np.allclose(unconverted, expected_outputs, atol=1e-2)


@pytest.mark.parametrize("reset_after", [True, False])
def test_convert_twice_gives_the_original_weights_exactly(reset_after, rng):
    cell = keras_rnn_lab.GRUCell(ref.UNITS, reset_after=reset_after)
    keras.layers.RNN(cell)(np.zeros((ref.BATCH, ref.TIME, ref.FEATURES), "float32"))
    weights = [rng.normal(size=w.shape).astype("float32") for w in cell.get_weights()]
    originals = [w.copy() for w in weights]

    once = convert_gru_update_convention(weights)
    twice = convert_gru_update_convention(once)

    for original, given, converted, back in zip(originals, weights, once, twice):
        np.testing.assert_array_equal(given, original)  # the input is not modified
        np.testing.assert_array_equal(back, original)
        assert back.dtype == original.dtype
        # only the z block (first `units` columns, in every bias row) changes sign
        np.testing.assert_array_equal(converted[..., : ref.UNITS], -original[..., : ref.UNITS])
        np.testing.assert_array_equal(converted[..., ref.UNITS :], original[..., ref.UNITS :])


def test_convert_accepts_weights_without_bias(rng):
    kernel = rng.normal(size=(ref.FEATURES, 3 * ref.UNITS))
    recurrent = rng.normal(size=(ref.UNITS, 3 * ref.UNITS))
    converted = convert_gru_update_convention([kernel, recurrent])
    assert len(converted) == 2
    np.testing.assert_array_equal(converted[1][:, : ref.UNITS], -recurrent[:, : ref.UNITS])


@pytest.mark.parametrize(
    "weights, match",
    [
        (np.zeros((4, 15)), "`weights` must be"),
        ([np.zeros((4, 15))], "`weights` must be"),
        ([np.zeros((4, 15))] * 4, "`weights` must be"),
        ([np.zeros((4, 15)), np.zeros((5, 10))], r"`weights\[1\]`.*\(5, 10\)"),
    ],
    ids=["array", "one_array", "four_arrays", "not_a_gru_recurrent_kernel"],
)
def test_convert_rejects_what_is_not_gru_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        convert_gru_update_convention(weights)
