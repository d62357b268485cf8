"""Which loop a fast layer runs (keras_rnn_lab/layers/loop_choice.py), on simulated devices.

The decision is tested on a CPU machine with made-up device lists; the cuDNN
route itself is Keras's own code, so on a CPU it is checked by forcing it:
the layer then goes through the built-in's inner loop (which, finding no GPU,
runs Keras's loop over our cell) and must give our fast path's numbers.
"""

import collections

import keras
import numpy as np
import pytest
import rnn_reference as ref
import tensorflow as tf

import keras_rnn_lab
from keras_rnn_lab.layers import loop_choice

FakeDevice = collections.namedtuple("FakeDevice", ["name", "device_type"])
GPU = [FakeDevice("/device:GPU:0", "GPU")]
NO_GPU = []


@pytest.mark.parametrize(
    "make_layer, gpus, path, reason",
    [
        (lambda: keras_rnn_lab.LSTM(4), NO_GPU, "fast", "no GPU visible"),
        (lambda: keras_rnn_lab.LSTM(4), GPU, "cudnn", "GPU:0"),
        (lambda: keras_rnn_lab.GRU(4), GPU, "cudnn", "GPU:0"),
        (lambda: keras_rnn_lab.LSTM(4, dropout=0.2), GPU, "cudnn", "GPU:0"),  # input dropout is applied before cuDNN
        (lambda: keras_rnn_lab.LSTM(4, use_cudnn=False), GPU, "fast", "use_cudnn=False"),
        (lambda: keras_rnn_lab.LSTM(4, recurrent_dropout=0.2), GPU, "fast", "recurrent_dropout"),
        (lambda: keras_rnn_lab.LSTM(4, recurrent_kernel_dropout=0.2), GPU, "fast", "recurrent_kernel_dropout"),
        (lambda: keras_rnn_lab.GRU(4, recurrent_kernel_dropout=0.2), GPU, "fast", "recurrent_kernel_dropout"),
        (lambda: keras_rnn_lab.LSTM(4, activation="relu"), GPU, "fast", "activation is not tanh"),
        (lambda: keras_rnn_lab.LSTM(4, recurrent_activation="hard_sigmoid"), GPU, "keras", "hard_sigmoid"),
        (lambda: keras_rnn_lab.LSTM(4, use_bias=False), GPU, "fast", "use_bias=False"),
        (lambda: keras_rnn_lab.LSTM(4, unroll=True), GPU, "keras", "unroll"),
        (lambda: keras_rnn_lab.GRU(4, reset_after=False), GPU, "fast", "reset_after=False"),
        (lambda: keras_rnn_lab.GRU(4, update_convention="lecture"), GPU, "fast", "use_cudnn=False"),
        (lambda: keras_rnn_lab.SimpleRNN(4), GPU, "fast", "no cuDNN kernel"),
        (lambda: keras_rnn_lab.SimpleRNN(4, activation="softplus"), NO_GPU, "keras", "softplus"),
        (lambda: keras_rnn_lab.LSTM(4, activation=tf.tanh), GPU, "cudnn", "GPU:0"),  # Keras accepts tf.tanh too
    ],
)
def test_chooses_like_keras_on_tensorflow(make_layer, gpus, path, reason):
    choice = loop_choice.choose_loop(make_layer(), backend="tensorflow", gpus=gpus)
    assert choice.path == path
    assert reason in choice.reason


@pytest.mark.parametrize(
    "make_layer, path",
    [
        (lambda: keras_rnn_lab.LSTM(4), "builtin"),
        (lambda: keras_rnn_lab.GRU(4), "builtin"),
        (lambda: keras_rnn_lab.GRU(4, update_convention="lecture"), "keras"),  # cuDNN has no lecture GRU
        (lambda: keras_rnn_lab.LSTM(4, use_cudnn=False), "keras"),
        (lambda: keras_rnn_lab.SimpleRNN(4), "keras"),
        (lambda: keras_rnn_lab.LSTM(4, recurrent_kernel_dropout=0.2), "keras"),  # weight drop: never cuDNN
    ],
)
def test_other_backends_get_keras_loops(make_layer, path):
    for backend in ("jax", "torch"):
        choice = loop_choice.choose_loop(make_layer(), backend=backend, gpus=GPU)
        assert choice.path == path and backend in choice.reason


def test_use_cudnn_true_on_another_backend_needs_cudnn_arguments_too():
    with pytest.raises(ValueError, match=r"cannot run cuDNN here \(activation is not tanh\)"):
        loop_choice.choose_loop(keras_rnn_lab.LSTM(4, use_cudnn=True, activation="relu"), backend="jax", gpus=GPU)


def test_use_cudnn_true_without_cudnn_raises_as_the_builtin_does():
    x = np.zeros((2, 3, 4), "float32")
    with pytest.raises(ValueError, match="use_cudnn"):
        keras.layers.LSTM(3, use_cudnn=True)(x)  # CPU: Keras refuses
    with pytest.raises(ValueError, match=r"use_cudnn=True\) cannot run cuDNN here \(no GPU visible\)"):
        keras_rnn_lab.LSTM(3, use_cudnn=True)(x)
    with pytest.raises(ValueError, match="recurrent_dropout"):
        loop_choice.choose_loop(keras_rnn_lab.GRU(3, use_cudnn=True, recurrent_dropout=0.1), "tensorflow", GPU)
    assert loop_choice.choose_loop(keras_rnn_lab.GRU(3, use_cudnn=True), "tensorflow", GPU).path == "cudnn"


def test_use_cudnn_values_as_keras():
    for value in ("auto", True, False):
        assert keras_rnn_lab.LSTM(2, use_cudnn=value).use_cudnn == keras.layers.LSTM(2, use_cudnn=value).use_cudnn
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="`use_cudnn`"):
            keras_rnn_lab.GRU(2, use_cudnn=bad)
    # Not serialized, exactly as keras.layers.LSTM/GRU leave it out.
    assert "use_cudnn" not in keras_rnn_lab.LSTM(2, use_cudnn=False).get_config()
    assert keras_rnn_lab.GRU(2, update_convention="lecture").use_cudnn is False
    with pytest.raises(ValueError, match="update_convention='lecture'"):
        keras_rnn_lab.GRU(2, update_convention="lecture", use_cudnn=True)
    for layer_class in (keras.layers.SimpleRNN, keras_rnn_lab.SimpleRNN):  # no such argument in either
        with pytest.raises(ValueError, match="Unrecognized keyword arguments.*use_cudnn"):
            layer_class(2, use_cudnn=True)


def test_layer_records_the_loop_it_took():
    layer = keras_rnn_lab.GRU(3)
    assert layer.last_loop is None
    layer(np.zeros((2, 4, 5), "float32"))
    assert layer.last_loop.path == "fast" and "no GPU visible" in layer.last_loop.reason
    unrolled = keras_rnn_lab.GRU(3, unroll=True)
    unrolled(np.zeros((2, 4, 5), "float32"))
    assert unrolled.last_loop == ("keras", "unroll=True asks for Keras's unrolled loop")


def _spy_builtin_inner_loop(monkeypatch, builtin_class):
    """Count calls of the built-in's inner_loop (the cuDNN dispatch)."""
    calls = []
    original = builtin_class.inner_loop

    def spy(self, *args, **kwargs):
        calls.append(type(self).__name__)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(builtin_class, "inner_loop", spy)
    return calls


@pytest.mark.parametrize(
    "name, layer_kwargs, mask",
    [
        ("LSTM", {"return_sequences": True}, None),
        ("LSTM", {"return_state": True, "go_backwards": True}, "right_padded"),
        ("GRU", {"return_sequences": True, "return_state": True}, None),
        ("GRU", {"go_backwards": True}, "right_padded"),
    ],
)
def test_forced_cudnn_route_equals_the_fast_path(name, layer_kwargs, mask, monkeypatch, rng):
    """With a GPU simulated, the layer hands the sequence to the built-in's
    dispatch; on this CPU that dispatch runs Keras's loop over our cell, and
    outputs, states and gradients must equal our fast path's."""
    x = tf.constant(rng.normal(size=(3, 6, 4)), "float32")
    step_mask = None
    if mask == "right_padded":  # the only masks cuDNN takes
        step_mask = tf.constant(np.arange(6)[None, :] < np.array([[6], [4], [2]]))
    fast = getattr(keras_rnn_lab, name)(5, **layer_kwargs)
    delegated = getattr(keras_rnn_lab, name)(5, **layer_kwargs)
    fast(x), delegated(x)
    weights = ref.random_weights(fast, rng)
    fast.set_weights(weights)
    delegated.set_weights(weights)

    results = {}
    for label, layer in (("fast", fast), ("delegated", delegated)):
        if label == "delegated":
            calls = _spy_builtin_inner_loop(monkeypatch, getattr(keras.layers, name))
            monkeypatch.setattr(loop_choice, "visible_gpus", lambda: GPU)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, mask=step_mask, training=True)
            out = list(out) if isinstance(out, (list, tuple)) else [out]
            loss = sum(tf.reduce_sum(o * o) for o in out)
        results[label] = (out, tape.gradient(loss, [x, *layer.trainable_weights]))
    assert delegated.last_loop.path == "cudnn" and fast.last_loop.path == "fast"
    assert calls == [name]
    for ours, theirs in zip(results["delegated"][0], results["fast"][0]):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
    for ours, theirs in zip(results["delegated"][1], results["fast"][1]):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5)
