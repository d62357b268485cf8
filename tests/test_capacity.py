"""The parameters-against-examples guard and the L1/L2 penalties recipes share."""

import dataclasses
import warnings

import keras
import numpy as np
import pytest

from keras_rnn_lab.diagnostics import capacity
from keras_rnn_lab.training import recurrent_layer, regularization


def lstm_model(units=4, features=3):
    return keras.Sequential([keras.Input((None, features)), recurrent_layer("lstm", units), keras.layers.Dense(1)])


def test_trainable_parameters_counts_the_lstm_by_hand():
    model = lstm_model(units=4, features=3)
    # Four gates, each with U (3 x 4), W (4 x 4) and b (4); then Dense 4 -> 1.
    assert capacity.trainable_parameters(model) == 4 * (3 * 4 + 4 * 4 + 4) + (4 + 1) == model.count_params()


def test_frozen_weights_do_not_count():
    model = lstm_model()
    model.layers[-1].trainable = False
    assert capacity.trainable_parameters(model) == 4 * (3 * 4 + 4 * 4 + 4)


def test_check_capacity_warns_only_when_parameters_outnumber_examples():
    model = lstm_model()  # 133 parameters
    with pytest.warns(capacity.OversizedModelWarning, match=r"133 trainable parameters for 100 training strings"):
        result = capacity.check_capacity(model, 100, "strings")
    assert result.oversized and result.ratio == pytest.approx(1.33)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not capacity.check_capacity(model, 133).oversized  # equal is not more
        capacity.check_capacity(model, 10, action="ignore")


def test_check_capacity_rejects_on_request():
    with pytest.raises(capacity.OversizedModelError, match="memorise"):
        capacity.check_capacity(lstm_model(), 10, action="reject")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(examples=0), "`examples` must be a positive int; received 0"),
        (dict(examples=2.5), "`examples`"),
        (dict(examples=10, action="stop"), "`action` must be one of"),
    ],
)
def test_check_capacity_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        capacity.check_capacity(lstm_model(), **kwargs)


def test_unbuilt_model_is_named_in_the_error():
    with pytest.raises(ValueError, match="must be built"):
        capacity.trainable_parameters(keras.Sequential([keras.layers.Dense(2)], name="unbuilt"))


@dataclasses.dataclass
class Penalties:
    kernel_l1: float = 0.0
    kernel_l2: float = 0.0
    recurrent_l1: float = 0.0
    recurrent_l2: float = 0.0


def test_zero_penalties_add_no_regularizer():
    assert regularization.weight_penalties(Penalties()) == {}


def test_penalties_add_the_lecture_terms_to_the_loss():
    config = Penalties(kernel_l1=1e-3, kernel_l2=1e-2, recurrent_l2=1e-1)
    layer = recurrent_layer("gru", 5, **regularization.weight_penalties(config))
    model = keras.Sequential([keras.Input((None, 3)), layer])
    model(np.zeros((1, 2, 3), "float32"))
    kernel, recurrent_kernel = layer.cell.kernel.numpy(), layer.cell.recurrent_kernel.numpy()
    expected = 1e-3 * np.abs(kernel).sum() + 1e-2 * np.square(kernel).sum() + 1e-1 * np.square(recurrent_kernel).sum()
    np.testing.assert_allclose(float(sum(model.losses)), expected, rtol=1e-5)


@pytest.mark.parametrize("value", [-1e-3, "0.1", True, float("nan")])
def test_bad_penalty_names_the_field(value):
    with pytest.raises(ValueError, match=r"`recurrent_l1` must be a number >= 0"):
        regularization.weight_penalties(Penalties(recurrent_l1=value))


@dataclasses.dataclass
class Regularised(Penalties):
    dropout: float = 0.25
    recurrent_dropout: float = 0.5
    seed: int = 7


def test_layer_regularisation_carries_dropout_seed_and_penalties_to_the_layer():
    layer = recurrent_layer("lstm", 3, **regularization.layer_regularisation(Regularised(kernel_l2=1e-2)))
    assert (layer.cell.dropout, layer.cell.recurrent_dropout, layer.cell.seed) == (0.25, 0.5, 7)
    assert layer.cell.kernel_regularizer.l2 == pytest.approx(1e-2) and layer.cell.recurrent_regularizer is None
