"""What the cells share (keras_rnn_lab/cells/cell_base.py): contract, weights, config, saving, learning."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import rnn_reference as ref

import keras_rnn_lab

# One non-default configuration per cell kind, so a config that lost an
# argument would change the numbers.
CONFIGURED_CELLS = {
    "simple_rnn_relu": lambda: keras_rnn_lab.SimpleRNNCell(
        ref.UNITS, activation="relu", kernel_regularizer="l2", recurrent_constraint="non_neg", seed=5
    ),
    "lstm": lambda: keras_rnn_lab.LSTMCell(
        ref.UNITS, recurrent_activation="hard_sigmoid", unit_forget_bias=False, dropout=0.25, seed=3
    ),
    "gru_lecture_reset_after": lambda: keras_rnn_lab.GRUCell(
        ref.UNITS, update_convention="lecture", recurrent_dropout=0.1, bias_initializer="ones"
    ),
    "gru_reset_before_no_bias": lambda: keras_rnn_lab.GRUCell(ref.UNITS, reset_after=False, use_bias=False),
}


def _sequences(rng):
    return rng.normal(size=(ref.BATCH, ref.TIME, ref.FEATURES)).astype("float32")


@pytest.mark.parametrize("kind", ref.KINDS)
def test_cell_contract_and_weight_layout_match_the_builtin_cell(kind, rng):
    ours, theirs = ref.our_cell(kind), ref.builtin_cell(kind)
    assert ours.state_size == theirs.state_size
    assert ours.output_size == theirs.output_size
    for cell in (ours, theirs):
        keras.layers.RNN(cell)(_sequences(rng))
    assert [w.name for w in ours.weights] == [w.name for w in theirs.weights] == ["kernel", "recurrent_kernel", "bias"]
    assert [tuple(w.shape) for w in ours.weights] == [tuple(w.shape) for w in theirs.weights]
    initial = ours.get_initial_state(batch_size=ref.BATCH)
    expected = theirs.get_initial_state(batch_size=ref.BATCH)
    expected = expected if isinstance(expected, (list, tuple)) else [expected]
    assert len(initial) == len(expected) == ref.KINDS[kind].n_states
    for state, other in zip(initial, expected):
        np.testing.assert_array_equal(state, np.zeros((ref.BATCH, ref.UNITS)))
        assert tuple(state.shape) == tuple(other.shape)


@pytest.mark.parametrize("kind", ref.KINDS)
def test_config_lists_the_builtin_cell_arguments(kind):
    ours = set(ref.our_cell(kind).get_config())
    theirs = set(ref.builtin_cell(kind).get_config())
    extra = {"update_convention"} if ref.KINDS[kind].cell == "GRUCell" else set()
    assert ours == theirs | extra | {"recurrent_kernel_dropout"}  # weight drop: ours only


@pytest.mark.parametrize("name", CONFIGURED_CELLS)
def test_get_config_round_trip_gives_the_same_cell(name, rng):
    cell = CONFIGURED_CELLS[name]()
    config = cell.get_config()
    clone = type(cell).from_config(config)
    assert clone.get_config() == config
    json.dumps(config)  # what .keras files store must be JSON

    x = _sequences(rng)
    layer = keras.layers.RNN(cell, return_sequences=True, return_state=True)
    layer(x)
    layer.set_weights(ref.random_weights(layer, rng))
    cloned_layer = keras.layers.RNN(clone, return_sequences=True, return_state=True)
    cloned_layer(x)
    cloned_layer.set_weights(layer.get_weights())
    for mine, theirs in zip(cloned_layer(x), layer(x)):
        np.testing.assert_array_equal(mine, theirs)


@pytest.mark.parametrize("name", CONFIGURED_CELLS)
def test_rnn_layer_config_round_trip_rebuilds_our_cell(name):
    layer = keras.layers.RNN(CONFIGURED_CELLS[name](), return_sequences=True, go_backwards=True)
    clone = keras.layers.RNN.from_config(layer.get_config())
    assert type(clone.cell) is type(layer.cell)
    assert clone.get_config() == layer.get_config()


def test_regularizers_reach_the_layer_losses_like_keras(rng):
    kwargs = {"kernel_regularizer": "l2", "recurrent_regularizer": "l1", "bias_regularizer": "l2"}
    ours = keras.layers.RNN(keras_rnn_lab.LSTMCell(ref.UNITS, **kwargs))
    theirs = keras.layers.RNN(keras.layers.LSTMCell(ref.UNITS, **kwargs))
    x = _sequences(rng)
    theirs(x)
    theirs.set_weights(ref.random_weights(theirs, rng))
    ours(x)
    ours.set_weights(theirs.get_weights())
    assert len(ours.losses) == len(theirs.losses) == 3
    np.testing.assert_allclose(sorted(map(float, ours.losses)), sorted(map(float, theirs.losses)), rtol=1e-6)


_LOAD_AND_PREDICT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import keras
    import keras_rnn_lab  # registers the cells

    directory = sys.argv[1]
    inputs = np.load(f"{directory}/inputs.npy")
    configs = {}
    for name in json.loads(open(f"{directory}/names.json").read()):
        model = keras.saving.load_model(f"{directory}/{name}.keras")
        np.save(f"{directory}/{name}.npy", model.predict(inputs, verbose=0))
        configs[name] = model.layers[-1].cell.get_config()
    with open(f"{directory}/configs.json", "w") as f:
        json.dump(configs, f)
    """
)


def test_saved_model_predicts_the_same_in_a_new_process(tmp_path, rng):
    # One subprocess for every cell: importing TensorFlow costs seconds each time.
    inputs = _sequences(rng)
    np.save(tmp_path / "inputs.npy", inputs)
    expected, configs = {}, {}
    for name, make_cell in CONFIGURED_CELLS.items():
        model = keras.Sequential([keras.Input((ref.TIME, ref.FEATURES)), keras.layers.RNN(make_cell())])
        model.set_weights(ref.random_weights(model, rng))
        model.save(tmp_path / f"{name}.keras")
        expected[name] = model.predict(inputs, verbose=0)
        configs[name] = json.loads(json.dumps(model.layers[-1].cell.get_config()))
    (tmp_path / "names.json").write_text(json.dumps(list(CONFIGURED_CELLS)))
    script = tmp_path / "load_and_predict.py"
    script.write_text(_LOAD_AND_PREDICT)

    done = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, timeout=300)

    assert done.returncode == 0, done.stderr[-3000:]
    loaded_configs = json.loads((tmp_path / "configs.json").read_text())
    for name in CONFIGURED_CELLS:
        assert loaded_configs[name] == configs[name], name
        np.testing.assert_allclose(np.load(tmp_path / f"{name}.npy"), expected[name], rtol=0, atol=1e-6, err_msg=name)


@pytest.mark.parametrize("cell_class", [keras_rnn_lab.SimpleRNNCell, keras_rnn_lab.LSTMCell, keras_rnn_lab.GRUCell])
def test_learning_happens_on_a_tiny_task(cell_class, rng):
    # Target: the mean over time of the first feature, which needs memory.
    x = rng.normal(size=(64, ref.TIME, ref.FEATURES)).astype("float32")
    y = x[:, :, 0].mean(axis=1, keepdims=True)
    model = keras.Sequential(
        [keras.Input((ref.TIME, ref.FEATURES)), keras.layers.RNN(cell_class(8)), keras.layers.Dense(1)]
    )
    # jit_compile=False: XLA only slows recurrent steps down on CPU (PITFALLS.md).
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse", jit_compile=False)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=16, epochs=25, verbose=0)
    after = model.evaluate(x, y, verbose=0)
    assert after < 0.3 * before, (before, after)
