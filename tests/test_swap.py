"""Models saved by others load into our layers (keras_rnn_lab/layers/swap.py).

Three kinds of file a user brings: a Keras 3 `.keras` model built with
keras.layers, a weights file saved from one, and a legacy Keras 2 (tf-keras)
`.h5` model whose config says `implementation=2` and `time_major=False`; and
one in-memory model.  Each ends up running on keras_rnn_lab's layers and
predicts what the original did.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_rnn_lab

OURS = (keras_rnn_lab.SimpleRNN, keras_rnn_lab.LSTM, keras_rnn_lab.GRU)
# The recurrent layers of both test models, in order: an LSTM, a Bidirectional
# GRU's two directions, a SimpleRNN.
IN_BOTH_MODELS = [keras_rnn_lab.LSTM, keras_rnn_lab.GRU, keras_rnn_lab.GRU, keras_rnn_lab.SimpleRNN]


def _recurrent_layers(model):
    """Every SimpleRNN/LSTM/GRU in `model`, looking inside Bidirectional and nested models."""
    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found += _recurrent_layers(layer)
        elif isinstance(layer, keras.layers.Bidirectional):
            found += [layer.forward_layer, layer.backward_layer]
        elif isinstance(layer, (keras.layers.SimpleRNN, keras.layers.LSTM, keras.layers.GRU)):
            found.append(layer)
    return found


def _builtin_model():
    """A functional model with every built-in recurrent layer, Bidirectional and a nested Sequential."""
    inputs = keras.Input((7,), dtype="int32")
    x = keras.layers.Embedding(20, 6, mask_zero=True)(inputs)
    x = keras.layers.LSTM(5, return_sequences=True, implementation=1)(x)
    x = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))(x)
    inner = keras.Sequential([keras.Input((7, 8)), keras.layers.SimpleRNN(3, activation="relu")])
    outputs = keras.layers.Dense(2)(inner(x))
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse", metrics=["mae"])
    return model


def _tokens():
    tokens = np.random.default_rng(0).integers(1, 20, size=(4, 7))
    tokens[:, 5:] = 0  # padding, masked by the Embedding
    return tokens


def test_keras_file_of_builtins_runs_on_our_layers(tmp_path):
    model = _builtin_model()
    # Non-default weights everywhere, so a weight landing in the wrong place shows.
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    model.save(tmp_path / "builtin.keras")
    expected = model.predict(_tokens(), verbose=0)

    loaded = keras_rnn_lab.load_model(tmp_path / "builtin.keras")
    swapped = keras_rnn_lab.swap_builtin_layers(model)  # the same, from the model in memory
    for candidate in (loaded, swapped):
        layers = _recurrent_layers(candidate)
        assert [type(layer) for layer in layers] == IN_BOTH_MODELS
        np.testing.assert_allclose(candidate.predict(_tokens(), verbose=0), expected, rtol=0, atol=1e-5)
        # Compiled as the original (loss, metrics, optimizer settings), ready to fit.
        assert candidate.get_compile_config() == model.get_compile_config()
    assert (tmp_path / "builtin.keras").stat().st_size > 0  # the user's file is left as it was
    history = loaded.fit(_tokens(), np.zeros((4, 2)), epochs=2, verbose=0)
    assert history.history["loss"][1] < history.history["loss"][0]
    # And saved again, it is a file of ours.
    loaded.save(tmp_path / "ours.keras")
    reloaded = keras.saving.load_model(tmp_path / "ours.keras")
    assert all(isinstance(layer, OURS) for layer in _recurrent_layers(reloaded))


def test_builtin_weights_file_loads_into_the_same_model_built_with_ours(tmp_path):
    builtin = _builtin_model()
    builtin.save_weights(tmp_path / "builtin.weights.h5")
    ours = keras_rnn_lab.swap_builtin_layers(_builtin_model())  # same architecture, fresh weights
    assert not np.allclose(ours.predict(_tokens(), verbose=0), builtin.predict(_tokens(), verbose=0))
    ours.load_weights(tmp_path / "builtin.weights.h5")
    np.testing.assert_allclose(
        ours.predict(_tokens(), verbose=0), builtin.predict(_tokens(), verbose=0), rtol=0, atol=1e-5
    )


def test_load_model_errors_name_the_file(tmp_path, legacy_files):
    with pytest.raises(FileNotFoundError, match="`filepath`: no model file at"):
        keras_rnn_lab.load_model(tmp_path / "missing.keras")
    (tmp_path / "model.txt").write_text("not a model")
    with pytest.raises(ValueError, match=r"`filepath` must be a \.keras or a legacy \.h5"):
        keras_rnn_lab.load_model(tmp_path / "model.txt")
    with pytest.raises(ValueError, match="holds weights only"):
        keras_rnn_lab.load_model(legacy_files / "legacy_weights.h5")


def test_swap_refuses_what_it_cannot_rebuild():
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        keras_rnn_lab.swap_builtin_layers(keras.layers.LSTM(2))

    class Subclassed(keras.Model):
        def __init__(self):
            super().__init__()
            self.lstm = keras.layers.LSTM(2)

        def call(self, x):
            return self.lstm(x)

    with pytest.raises(TypeError, match="subclassed model"):
        keras_rnn_lab.swap_builtin_layers(Subclassed())


_SAVE_WITH_TF_KERAS = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tf_keras
    folder = sys.argv[1]
    x = np.random.default_rng(3).normal(size=(4, 6, 3)).astype("float32")
    model = tf_keras.Sequential([
        tf_keras.layers.LSTM(5, return_sequences=True, implementation=2, input_shape=(6, 3)),
        tf_keras.layers.Bidirectional(tf_keras.layers.GRU(4, return_sequences=True, implementation=1)),
        tf_keras.layers.SimpleRNN(3),
        tf_keras.layers.Dense(2),
    ])
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(scale=0.5, size=w.shape) for w in model.get_weights()])
    model.save(f"{folder}/legacy.h5")
    model.save_weights(f"{folder}/legacy_weights.h5")
    np.save(f"{folder}/x.npy", x)
    np.save(f"{folder}/expected.npy", model.predict(x, verbose=0))
    """
)


@pytest.fixture(scope="module")
def legacy_files(tmp_path_factory):
    if importlib.util.find_spec("tf_keras") is None:
        pytest.skip("tf-keras is not installed (pip install -e '.[test]' installs it)")
    folder = tmp_path_factory.mktemp("legacy")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    subprocess.run([sys.executable, "-c", _SAVE_WITH_TF_KERAS, str(folder)], check=True, env=env, capture_output=True)
    return folder


def test_legacy_keras_2_model_loads_into_ours(legacy_files):
    path = legacy_files / "legacy.h5"
    # The built-in cannot load it (Keras 2's time_major); ours can.
    with pytest.raises(ValueError, match="time_major"):
        keras.saving.load_model(path, compile=False)
    model = keras_rnn_lab.load_model(path)
    layers = _recurrent_layers(model)
    assert [type(layer) for layer in layers] == IN_BOTH_MODELS
    # Kept where the file's layer is built directly (Bidirectional rebuilds its
    # copies from get_config, which leaves `implementation` out, as Keras's does).
    assert layers[0].cell.implementation == 2
    x = np.load(legacy_files / "x.npy")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(legacy_files / "expected.npy"), rtol=0, atol=1e-5)


def test_legacy_keras_2_weights_file_loads_into_our_layers(legacy_files):
    model = keras.Sequential(
        [
            keras.Input((6, 3)),
            keras_rnn_lab.LSTM(5, return_sequences=True),
            keras.layers.Bidirectional(keras_rnn_lab.GRU(4, return_sequences=True)),
            keras_rnn_lab.SimpleRNN(3),
            keras.layers.Dense(2),
        ]
    )
    model.load_weights(legacy_files / "legacy_weights.h5")
    x = np.load(legacy_files / "x.npy")
    np.testing.assert_allclose(model.predict(x, verbose=0), np.load(legacy_files / "expected.npy"), rtol=0, atol=1e-5)
