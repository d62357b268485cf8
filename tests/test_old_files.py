"""`.keras` files saved by earlier versions of keras_rnn_lab and its recipes still load.

`data/layers_0.1.0.keras` was saved by the code before the fast layers became
subclasses of the built-ins (commit 44b3aaa): our SimpleRNN (relu), a
Bidirectional LSTM with dropout, a lecture-convention GRU and RNN(LSTMCell),
with random weights; `layers_0.1.0.npz` holds an input and that model's output.
"""

import pathlib

import keras
import numpy as np

import keras_rnn_lab

DATA = pathlib.Path(__file__).parent / "data"


def test_a_model_saved_by_0_1_0_loads_and_predicts_the_same():
    model = keras.saving.load_model(DATA / "layers_0.1.0.keras")
    saved = np.load(DATA / "layers_0.1.0.npz")
    np.testing.assert_allclose(model.predict(saved["x"], verbose=0), saved["y"], rtol=0, atol=1e-6)
    kinds = [type(layer) for layer in model.layers]
    assert keras_rnn_lab.SimpleRNN in kinds and keras_rnn_lab.GRU in kinds
    assert isinstance(model.layers[2].forward_layer, keras_rnn_lab.LSTM)


def test_a_captioning_model_saved_under_the_old_registered_names_loads():
    """`captioning_0.1.0.keras` names the captioning layers "keras_rnn_lab>..."
    (their package before they moved to "recipes.captioning")."""
    from recipes import captioning

    model = keras.saving.load_model(DATA / "captioning_0.1.0.keras")
    saved = np.load(DATA / "captioning_0.1.0.npz")
    inputs = {"image": saved["image"], "words": saved["words"]}
    np.testing.assert_allclose(model.predict(inputs, verbose=0), saved["y"], rtol=0, atol=1e-5)
    assert any(isinstance(layer, captioning.CoordinateChannels) for layer in model.layers)
    assert keras.saving.get_registered_name(captioning.CoordinateChannels) == "recipes.captioning>CoordinateChannels"
