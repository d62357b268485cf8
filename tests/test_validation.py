"""Bad arguments and inputs fail early, naming the argument (keras_rnn_lab/_validation.py)."""

import re

import keras
import numpy as np
import pytest
import rnn_reference as ref

import keras_rnn_lab

CELLS = [keras_rnn_lab.SimpleRNNCell, keras_rnn_lab.LSTMCell, keras_rnn_lab.GRUCell]
GATED_CELLS = [keras_rnn_lab.LSTMCell, keras_rnn_lab.GRUCell]
cell_classes = pytest.mark.parametrize("cell_class", CELLS, ids=lambda c: c.__name__)


@cell_classes
@pytest.mark.parametrize(
    "units, error",
    [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("4", TypeError), (True, TypeError), (None, TypeError)],
    ids=["zero", "negative", "float", "string", "bool", "none"],
)
def test_units_must_be_a_positive_int(cell_class, units, error):
    with pytest.raises(error, match=re.escape(f"`units` must be a positive int; received {units!r}")):
        cell_class(units)


@cell_classes
def test_units_accepts_numpy_integers(cell_class):
    assert cell_class(np.int64(3)).units == 3


@cell_classes
@pytest.mark.parametrize("argument", ["dropout", "recurrent_dropout", "recurrent_kernel_dropout"])
@pytest.mark.parametrize(
    "rate, error",
    [(1.0, ValueError), (-0.1, ValueError), (1.5, ValueError), ("0.1", TypeError), (None, TypeError)],
    ids=["one", "negative", "above_one", "string", "none"],
)
def test_dropout_rates_must_be_in_zero_one(cell_class, argument, rate, error):
    with pytest.raises(error, match=rf"Argument `{argument}` must be a float in \[0, 1\)"):
        cell_class(4, **{argument: rate})


@cell_classes
@pytest.mark.parametrize("argument", ["dropout", "recurrent_dropout", "recurrent_kernel_dropout"])
def test_dropout_rates_accept_the_valid_range(cell_class, argument):
    assert getattr(cell_class(4, **{argument: 0.0}), argument) == 0.0
    assert getattr(cell_class(4, **{argument: 0.99}), argument) == 0.99


@cell_classes
def test_unknown_activation_is_named(cell_class):
    with pytest.raises(ValueError, match=r"Argument `activation` must be a Keras activation.*'nope'"):
        cell_class(4, activation="nope")


@pytest.mark.parametrize("cell_class", GATED_CELLS, ids=lambda c: c.__name__)
def test_unknown_recurrent_activation_is_named(cell_class):
    with pytest.raises(ValueError, match=r"Argument `recurrent_activation` must be a Keras activation.*'nope'"):
        cell_class(4, recurrent_activation="nope")


@pytest.mark.parametrize("convention", ["Keras", "nope", None])
def test_gru_unknown_update_convention_is_named(convention):
    with pytest.raises(ValueError, match=r"Argument `update_convention` must be one of .*'keras', 'lecture'"):
        keras_rnn_lab.GRUCell(4, update_convention=convention)


@cell_classes
@pytest.mark.parametrize("shape", [(3, 6), (3, 6, 4, 2)], ids=["rank2", "rank4"])
def test_rnn_rejects_inputs_that_are_not_rank_3(cell_class, shape):
    layer = keras.layers.RNN(cell_class(ref.UNITS))
    rank = len(shape)
    with pytest.raises(ValueError, match=rf"{cell_class.__name__} expects sequences of rank 3.*\(rank {rank},"):
        layer(np.zeros(shape, "float32"))


@cell_classes
def test_rnn_rejects_a_feature_size_other_than_the_built_one(cell_class):
    layer = keras.layers.RNN(cell_class(ref.UNITS))
    layer(np.zeros((ref.BATCH, ref.TIME, 4), "float32"))
    with pytest.raises(ValueError, match="was built for inputs with 4 features, but received inputs with 7 features"):
        layer(np.zeros((ref.BATCH, ref.TIME, 7), "float32"))


@cell_classes
def test_cell_rejects_a_feature_size_other_than_the_built_one(cell_class):
    cell = cell_class(ref.UNITS)
    states = cell.get_initial_state(batch_size=ref.BATCH)
    cell(np.zeros((ref.BATCH, 4), "float32"), states)
    with pytest.raises(ValueError, match="was built for inputs with 4 features, but received inputs with 7 features"):
        cell(np.zeros((ref.BATCH, 7), "float32"), states)
