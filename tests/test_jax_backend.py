"""Under KERAS_BACKEND=jax our cells and layers equal the built-ins and train.

The hand-written BPTT is TensorFlow code; on JAX the layers run the built-in's
own loop (README: which backend gets which path).  A backend is chosen once per
process, so the check runs in a subprocess; it needs `jax` (the test extra
installs the CPU build) and skips without it.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import pytest

_ON_JAX = textwrap.dedent(
    """
    import numpy as np
    import keras
    import keras_rnn_lab
    assert keras.backend.backend() == "jax", keras.backend.backend()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 6, 4)).astype("float32")
    mask = np.arange(6)[None, :] < np.array([[6], [4], [2]])
    expected_paths = {"SimpleRNN": "keras", "LSTM": "builtin", "GRU": "builtin"}
    for name in ("SimpleRNN", "LSTM", "GRU"):
        for kwargs in ({}, {"return_sequences": True, "go_backwards": True}, {"return_state": True}):
            builtin = getattr(keras.layers, name)(5, **kwargs)
            ours = getattr(keras_rnn_lab, name)(5, **kwargs)
            builtin(x), ours(x)
            weights = [rng.normal(scale=0.5, size=w.shape).astype("float32") for w in builtin.get_weights()]
            builtin.set_weights(weights)
            ours.set_weights(weights)
            for a, b in zip(keras.tree.flatten(ours(x, mask=mask)), keras.tree.flatten(builtin(x, mask=mask))):
                np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=0, atol=1e-5)
            assert ours.last_loop.path == expected_paths[name], (name, ours.last_loop)
        cell_ours = keras.layers.RNN(getattr(keras_rnn_lab, name + "Cell")(5))
        cell_builtin = keras.layers.RNN(getattr(keras.layers, name + "Cell")(5))
        cell_ours(x), cell_builtin(x)
        cell_ours.set_weights(cell_builtin.get_weights())
        np.testing.assert_allclose(np.asarray(cell_ours(x)), np.asarray(cell_builtin(x)), rtol=0, atol=1e-5)
    lecture = keras_rnn_lab.GRU(5, update_convention="lecture")
    lecture(x)
    assert lecture.last_loop.path == "keras", lecture.last_loop
    # Weight drop (never the built-in's cuDNN-capable loop): W at inference, W~ when training.
    dropped, plain = keras_rnn_lab.LSTM(5, recurrent_kernel_dropout=0.5, seed=1), keras_rnn_lab.LSTM(5)
    dropped(x), plain(x)
    plain.set_weights(dropped.get_weights())
    np.testing.assert_allclose(np.asarray(dropped(x)), np.asarray(plain(x)), rtol=0, atol=1e-6)
    assert dropped.last_loop.path == "keras", dropped.last_loop
    assert np.abs(np.asarray(dropped(x, training=True)) - np.asarray(plain(x, training=True))).max() > 1e-3

    # fit learns: the sign of the sum of a sequence.
    data = rng.normal(size=(256, 8, 1)).astype("float32")
    labels = (data.sum(axis=(1, 2)) > 0).astype("float32")
    model = keras.Sequential([keras.Input((8, 1)), keras_rnn_lab.LSTM(8), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(data, labels, epochs=8, batch_size=32, verbose=0).history
    assert history["loss"][-1] < 0.7 * history["loss"][0], history["loss"]
    print("jax ok", history["loss"][0], history["loss"][-1])
    """
)


@pytest.mark.slow  # 40 s: a fresh process on the JAX backend
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed (the test extra installs it)")
def test_cells_and_layers_equal_the_builtins_and_fit_under_jax():
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, "-c", _ON_JAX], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "jax ok" in result.stdout
