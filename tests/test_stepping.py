"""keras_rnn_lab.decoding.stepping: stepping a trained decoder's layers gives the whole model's outputs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab import decoding


def decoder(cell="LSTM", attention=False):
    """tokens (batch, time) [+ values (batch, 5, 6)] -> logits (batch, time, 9), random weights."""
    keras.utils.set_random_seed(0)
    tokens = keras.Input((None,), dtype="int32")
    hidden = getattr(keras.layers, cell)(6, return_sequences=True, name="rnn")(keras.layers.Embedding(9, 4)(tokens))
    inputs = [tokens]
    if attention:
        values = keras.Input((5, 6))
        inputs.append(values)
        context = keras.layers.Attention(name="attention")([hidden, values, values])
        hidden = keras.layers.Dense(6, activation="tanh", name="combine")(keras.layers.Concatenate()([hidden, context]))
    return keras.Model(inputs, keras.layers.Dense(9, name="logits")(hidden))


@pytest.mark.parametrize("cell, attention", [("LSTM", False), ("GRU", False), ("SimpleRNN", True)])
def test_cell_step_reproduces_the_models_log_probabilities(cell, attention):
    model = decoder(cell, attention)
    tokens = np.random.default_rng(0).integers(1, 9, size=(3, 4)).astype("int32")
    values = np.random.default_rng(1).normal(size=(3, 5, 6)).astype("float32")
    readout = None
    if attention:
        readout = decoding.attention_readout(model.get_layer("attention"), model.get_layer("combine"))
    embedding = next(layer for layer in model.layers if isinstance(layer, keras.layers.Embedding))
    step = decoding.cell_step(embedding, model.get_layer("rnn").cell, model.get_layer("logits"), readout, never=(0,))
    logits = model([tokens, values] if attention else tokens).numpy()
    logits[..., 0] = -np.inf
    expected = tf.nn.log_softmax(logits).numpy()
    states = [tf.zeros((3, 6))] * (2 if cell == "LSTM" else 1)
    for t in range(tokens.shape[1]):
        log_probs, states = step(tf.constant(tokens[:, t]), states, (values, values) if attention else None)
        np.testing.assert_allclose(log_probs.numpy(), expected[:, t], atol=1e-5)
    assert np.all(np.isneginf(log_probs.numpy()[:, 0]))


def test_cell_step_names_a_wrong_embedding():
    model = decoder()
    with pytest.raises(TypeError, match="`embedding` must be a keras.layers.Embedding"):
        decoding.cell_step(model.get_layer("logits"), model.get_layer("rnn").cell, model.get_layer("logits"))
