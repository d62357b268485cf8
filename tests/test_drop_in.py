"""`keras.layers.X` -> `keras_rnn_lab.X` changes nothing a Keras user can see.

Arguments, defaults, properties, config keys, cell names, accepted input
dtypes and the legacy `implementation` argument, each checked against the
Keras 3 built-in itself (introspected, not listed by hand), plus the three
failures the swap met before: `implementation=2`, `use_cudnn=` and integer input.
"""

import inspect

import keras
import numpy as np
import pytest

import keras_rnn_lab

NAMES = ["SimpleRNN", "LSTM", "GRU"]
CELL_NAMES = [name + "Cell" for name in NAMES]
# Config entries of ours that the built-in lacks, on purpose: the GRU's
# update_convention (README: the GRU's two conventions), the SimpleRNN's
# dropout seed, which keras.layers.SimpleRNN accepts but leaves out of its config,
# and every cell's and layer's recurrent_kernel_dropout (README: weight drop).
OUR_EXTRA_CONFIG = {
    "SimpleRNN": {"seed", "recurrent_kernel_dropout"},
    "LSTM": {"recurrent_kernel_dropout"},
    "GRU": {"update_convention", "recurrent_kernel_dropout"},
    "SimpleRNNCell": {"recurrent_kernel_dropout"},
    "LSTMCell": {"recurrent_kernel_dropout"},
    "GRUCell": {"update_convention", "recurrent_kernel_dropout"},
}


def _pair(name, *args, **kwargs):
    return getattr(keras.layers, name)(*args, **kwargs), getattr(keras_rnn_lab, name)(*args, **kwargs)


def _named_parameters(callable_):
    parameters = inspect.signature(callable_).parameters.values()
    return {p.name: p.default for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}


@pytest.mark.parametrize("name", NAMES + CELL_NAMES)
def test_every_builtin_argument_is_accepted_with_its_default(name):
    defaults = _named_parameters(getattr(keras.layers, name).__init__)
    del defaults["self"], defaults["units"]
    # Every argument the built-in names, passed explicitly at its default.
    reference, ours = _pair(name, 3, **defaults)
    extra = OUR_EXTRA_CONFIG.get(name, set())
    ours_config = {k: v for k, v in ours.get_config().items() if k not in extra | {"name"}}
    # Same config, key for key (the names differ by their counters).
    assert ours_config == {k: v for k, v in reference.get_config().items() if k != "name"}


@pytest.mark.parametrize("name", NAMES + CELL_NAMES)
def test_every_public_property_of_the_builtin_exists_with_the_same_value(name):
    x = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")
    builtin, ours = _pair(name, 3, dropout=0.1, recurrent_dropout=0.2)
    if not name.endswith("Cell"):
        builtin(x), ours(x)
    else:
        builtin.build((None, 4)), ours.build((None, 4))
    missing = []
    for attribute in dir(builtin):
        if attribute.startswith("_") or callable(getattr(type(builtin), attribute, None)):
            continue
        if not hasattr(ours, attribute):
            if hasattr(builtin, attribute):  # `input`/`output` raise on both when unconnected
                missing.append(attribute)
            continue
        theirs, mine = getattr(builtin, attribute), getattr(ours, attribute)
        if isinstance(theirs, (int, float, str, bool, type(None), tuple, list)) and attribute not in (
            "name",
            "path",
            "weights",
            "variables",
            "trainable_weights",
            "trainable_variables",
            "non_trainable_weights",
            "non_trainable_variables",
            "losses",
            "input",
            "output",
            "metrics",
            "metrics_variables",
            "input_spec",
        ):
            assert mine == theirs, f"{name}.{attribute}: ours {mine!r}, Keras {theirs!r}"
    assert missing == []


@pytest.mark.parametrize(
    "name, cell_name", [("SimpleRNN", "simple_rnn_cell"), ("LSTM", "lstm_cell"), ("GRU", "gru_cell")]
)
def test_cells_are_named_as_keras_names_them(name, cell_name):
    builtin, ours = _pair(name, 2)
    assert ours.cell.name == builtin.cell.name == cell_name


@pytest.mark.parametrize("name", ["LSTM", "GRU", "LSTMCell", "GRUCell"])
@pytest.mark.parametrize("implementation", [0, 1, 2])
def test_legacy_implementation_is_accepted_ignored_and_left_out_of_the_config(name, implementation):
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    builtin, ours = _pair(name, 3, implementation=implementation)
    plain = getattr(keras_rnn_lab, name)(3)
    cell = ours if name.endswith("Cell") else ours.cell
    builtin_cell = builtin if name.endswith("Cell") else builtin.cell
    assert cell.implementation == builtin_cell.implementation == implementation
    assert "implementation" not in ours.get_config() and "implementation" not in builtin.get_config()
    # With recurrent dropout Keras switches to implementation 1; so do we.
    _, dropped = _pair(name, 3, implementation=2, recurrent_dropout=0.1)
    assert (dropped if name.endswith("Cell") else dropped.cell).implementation == 1
    if not name.endswith("Cell"):
        ours(x), plain(x)
        plain.set_weights(ours.get_weights())
        np.testing.assert_array_equal(ours(x), plain(x))  # it changes nothing


def test_the_quoted_failure_lstm_64_implementation_2():
    layer = keras_rnn_lab.LSTM(64, implementation=2)
    assert layer(np.zeros((1, 3, 4), "float32")).shape == (1, 64)


def test_simple_rnn_rejects_implementation_as_keras_does():
    for layer_class in (keras.layers.SimpleRNN, keras_rnn_lab.SimpleRNN):
        with pytest.raises(ValueError, match="Unrecognized keyword arguments"):
            layer_class(2, implementation=2)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", ["int64", "int32", "uint8", "bool", "float64", "float16"])
def test_any_input_dtype_the_builtin_accepts_gives_its_output(name, dtype):
    """The quoted failure: `LSTM(2)(np.arange(12).reshape(1, 3, 4))` (int64)."""
    x = (np.arange(12).reshape(1, 3, 4) % 3).astype(dtype)
    builtin, ours = _pair(name, 2)
    builtin(x), ours(x)
    ours.set_weights(builtin.get_weights())
    expected, got = builtin(x), ours(x)
    assert keras.backend.standardize_dtype(got.dtype) == keras.backend.standardize_dtype(expected.dtype)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    # In training mode too (the hand-written BPTT's projection before the loop).
    np.testing.assert_allclose(ours(x, training=True), builtin(x, training=True), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_our_layers_are_instances_of_the_builtins(name):
    builtin, ours = _pair(name, 2)
    assert isinstance(ours, type(builtin))


def test_time_major_from_keras_2_configs():
    """Keras 2 configs carry time_major=False, which keras.layers rejects."""
    with pytest.raises(ValueError, match="time_major"):
        keras.layers.LSTM(2, time_major=False)
    x = np.random.default_rng(2).normal(size=(2, 3, 4)).astype("float32")
    legacy, plain = keras_rnn_lab.LSTM(2, time_major=False), keras_rnn_lab.LSTM(2)
    legacy(x), plain(x)
    plain.set_weights(legacy.get_weights())
    np.testing.assert_array_equal(legacy(x), plain(x))
    assert "time_major" not in legacy.get_config()
    with pytest.raises(ValueError, match="`time_major` must be False"):
        keras_rnn_lab.GRU(2, time_major=True)
