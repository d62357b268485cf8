"""The compiled sampler against the model it samples from."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_rnn_lab
from keras_rnn_lab.decoding.generation import TextGenerator


def _char_model(recurrent, vocabulary="abcde "):
    lookup = keras.layers.StringLookup(vocabulary=list(vocabulary), num_oov_indices=1, mask_token=None)
    characters = keras.Input((None,), dtype="string")
    x = keras.layers.Embedding(lookup.vocabulary_size(), 4)(lookup(characters))
    x = recurrent(x)
    return keras.Model(characters, keras.layers.Dense(lookup.vocabulary_size())(x))


@pytest.mark.parametrize(
    "recurrent",
    [
        lambda: keras_rnn_lab.LSTM(6, return_sequences=True),
        lambda: keras_rnn_lab.GRU(6, return_sequences=True),
        lambda: keras.layers.SimpleRNN(6, return_sequences=True),
    ],
    ids=["ours_lstm", "ours_gru", "builtin_simple_rnn"],
)
def test_greedy_generation_equals_predicting_the_growing_prefix(recurrent):
    """With top_k=1 sampling is argmax: each generated character must be
    the argmax of the model run over the whole prefix so far (the slow way)."""
    keras.utils.set_random_seed(0)
    model = _char_model(recurrent())
    vocabulary = np.array(model.layers[1].get_vocabulary())
    text = TextGenerator(model)("ab", length=8, top_k=1, seed=0)[0]
    for end in range(2, len(text)):
        logits = model(tf.constant([list(text[:end])]))[0, -1]
        # index 0 is the out-of-vocabulary entry, which is never generated
        assert text[end] == vocabulary[1 + int(np.argmax(logits[1:]))], (text, end)


def test_same_seed_same_text_and_samples_differ():
    keras.utils.set_random_seed(1)
    generator = TextGenerator(_char_model(keras_rnn_lab.LSTM(8, return_sequences=True)))
    first = generator("a", length=30, temperature=1.5, seed=3, samples=3)
    assert first == generator("a", length=30, temperature=1.5, seed=3, samples=3)
    assert generator("a", length=30, temperature=1.5, seed=4, samples=3) != first
    assert len(set(first)) > 1 and all(len(t) == 31 and t[0] == "a" for t in first)


def test_top_k_one_ignores_temperature_and_seed():
    keras.utils.set_random_seed(2)
    generator = TextGenerator(_char_model(keras_rnn_lab.GRU(8, return_sequences=True)))
    greedy = generator("ab", length=20, temperature=0.5, top_k=1, seed=1)
    assert generator("ab", length=20, temperature=5.0, top_k=1, seed=9) == greedy
    assert generator("ab", length=20, temperature=5.0, top_k=3, seed=9) != greedy


def test_unknown_prime_characters_map_to_out_of_vocabulary():
    keras.utils.set_random_seed(3)
    model = _char_model(keras_rnn_lab.LSTM(8, return_sequences=True))
    generator = TextGenerator(model)
    # 'x' and 'z' are not in the vocabulary: both become the OOV entry, so the
    # continuations are identical.
    assert generator("ax", 10, top_k=1)[0][2:] == generator("az", 10, top_k=1)[0][2:]
    assert model.layers[1](tf.constant([["x", "a"]])).numpy().tolist() == [[0, 1]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"prime": ""}, "`prime`"),
        ({"length": -1}, "`length`"),
        ({"temperature": 0}, "`temperature`"),
        ({"top_k": 99}, "`top_k`"),
        ({"samples": 0}, "`samples`"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    generator = TextGenerator(_char_model(keras_rnn_lab.LSTM(4, return_sequences=True)))
    call = {"prime": "a", "length": 3, **kwargs}
    with pytest.raises(ValueError, match=match):
        generator(**call)


def test_rejects_a_model_of_another_shape():
    model = keras.Sequential([keras.Input((3, 2)), keras_rnn_lab.LSTM(4), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="`model` must be lookup"):
        TextGenerator(model)
