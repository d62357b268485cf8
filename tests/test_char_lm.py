"""The character language model recipe on tiny data."""

import dataclasses
import re

import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab import training
from keras_rnn_lab.decoding.generation import TextGenerator
from recipes import char_lm


def test_hello_preset_learns_hello(capsys):
    assert char_lm.main(["--preset", "hello"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "hello"


def test_tiny_preset_loss_falls_and_reports_bits_per_character(tmp_path):
    config = char_lm.RECIPE.config("tiny")
    model, history = char_lm.train(config, out=str(tmp_path / "tiny.keras"))
    bits = history.history["bits_per_char"]
    assert bits[-1] < bits[0] - 0.3, bits
    assert "val_bits_per_char" in history.history


def test_saved_model_reloads_and_generates_the_same_text(tmp_path):
    path = str(tmp_path / "m.keras")
    config = dataclasses.replace(char_lm.RECIPE.config("tiny"), epochs=1)
    model, _ = char_lm.train(config, out=path)
    again = char_lm.load(path)
    texts = TextGenerator(model)("From", 40, temperature=0.9, seed=5, samples=2)
    assert TextGenerator(again)("From", 40, temperature=0.9, seed=5, samples=2) == texts


def test_user_text_file_and_clear_errors(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    assert char_lm.main(["--preset", "tiny", "--text", str(path), "--epochs", "1"]) == 0
    # A file replaces the hello preset's literal text.
    assert char_lm.main(["--preset", "hello", "--text", str(path), "--epochs", "1"]) == 0
    with pytest.raises(ValueError, match="`text_path`: no such file"):
        char_lm.main(["--preset", "tiny", "--text", str(tmp_path / "missing.txt")])
    with pytest.raises(ValueError, match="`validation_fraction`.*holds out none"):
        char_lm.load_data(char_lm.RECIPE.config("tiny", validation_fraction=0.01, max_characters=40))


def _tbptt_models(window=5, batch_size=2):
    """A stateful twin and the ordinary model with the same weights, no dropout."""
    config = dataclasses.replace(
        char_lm.RECIPE.config("tiny"), tbptt=True, window=window, batch_size=batch_size, dropout=0.0, output_dropout=0.0
    )
    vocabulary = list("abcdefgh")
    stateful = char_lm.build_model(config, vocabulary, stateful=True)
    stateless = char_lm.build_model(config, vocabulary)
    # Random weights large enough that the state matters (a fresh model's logits are ~1e-3).
    rng = np.random.default_rng(2)
    stateful.set_weights([rng.normal(scale=0.5, size=w.shape) for w in stateful.get_weights()])
    stateless.set_weights(stateful.get_weights())
    return config, stateful, stateless


def test_truncated_bptt_carries_the_state_across_windows():
    config, stateful, stateless = _tbptt_models()
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefgh"), size=2 * 10 + 1))
    inputs, _ = training.stream_windows(np.array(list(text)), config.window, config.batch_size)
    first, second = inputs[0], inputs[1]  # (2 streams, 5): the second continues the first
    stateful(first)
    carried = stateful(second).numpy()
    # The state carried over equals reading both windows in one pass.
    whole = stateless(np.concatenate([first, second], axis=1)).numpy()
    np.testing.assert_allclose(carried, whole[:, config.window :], rtol=1e-4, atol=1e-5)
    stateful.get_layer("recurrent").reset_states()
    fresh = stateful(second).numpy()
    assert np.abs(fresh - carried).max() > 0.1  # the second window's output depends on the first
    np.testing.assert_allclose(fresh, stateless(second).numpy(), rtol=1e-4, atol=1e-5)


def test_truncated_bptt_gradients_stop_at_the_window_start():
    config, stateful, stateless = _tbptt_models()
    rng = np.random.default_rng(1)
    text = "".join(rng.choice(list("abcdefgh"), size=2 * 10 + 1))
    inputs, targets = training.stream_windows(np.array(list(text)), config.window, config.batch_size)
    lookup = stateful.get_layer("char_lookup")
    target_ids = lookup(targets[1])

    def loss(logits):
        return tf.reduce_sum(char_lm.summed_cross_entropy(target_ids, logits))

    stateful(inputs[0])
    carried_state = [tf.identity(s) for s in stateful.get_layer("recurrent").states]
    with tf.GradientTape() as tape:  # what a training step on the second window differentiates
        truncated = tape.gradient(loss(stateful(inputs[1], training=True)), stateful.trainable_weights)
    # Reference 1: the second window alone, its initial state a constant.
    layers = {name: stateless.get_layer(name) for name in ("char_lookup", "embedding", "recurrent", "logits")}
    with tf.GradientTape() as tape:
        h = layers["recurrent"](
            layers["embedding"](layers["char_lookup"](inputs[1])), initial_state=carried_state, training=True
        )
        constant_start = tape.gradient(loss(layers["logits"](h)), stateless.trainable_weights)
    # Reference 2: full BPTT through both windows (the same loss, on the second window only).
    with tf.GradientTape() as tape:
        logits = stateless(np.concatenate([inputs[0], inputs[1]], axis=1), training=True)[:, config.window :]
        full = tape.gradient(loss(logits), stateless.trainable_weights)
    for a, b in zip(truncated, constant_start):
        np.testing.assert_allclose(
            tf.convert_to_tensor(a).numpy(), tf.convert_to_tensor(b).numpy(), rtol=1e-4, atol=1e-6
        )
    recurrent_kernel = [i for i, w in enumerate(stateless.trainable_weights) if "recurrent_kernel" in w.path][0]
    difference = np.abs(truncated[recurrent_kernel].numpy() - full[recurrent_kernel].numpy()).max()
    assert difference > 1e-3  # full BPTT reaches back into the first window; truncated does not


def test_streamed_validation_equals_each_stream_read_in_one_pass():
    """char-rnn's scoring (state carried window to window) against the stateless
    model reading each stream whole, by NumPy cross-entropy."""
    config, stateful, stateless = _tbptt_models(window=5, batch_size=2)
    rng = np.random.default_rng(3)
    text = "".join(rng.choice(list("abcdefgh"), size=2 * 15 + 3))
    data = char_lm.Data(train_text="", validation_text=text, vocabulary=list("abcdefgh"))
    got = char_lm.streamed_validation_bits(config, data, stateless)
    inputs, targets = training.stream_windows(np.array(list(text)), config.window, config.batch_size)
    streams = np.concatenate(list(inputs), axis=1)  # (2, 15): each stream's three windows in one row
    next_chars = np.concatenate(list(targets), axis=1)
    logits = stateless(streams).numpy().astype("float64")
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    ids = stateless.get_layer("char_lookup")(next_chars).numpy()
    want = -np.take_along_axis(log_p, ids[..., None], -1).mean() / np.log(2.0)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # From a zero state at every window (how fit validates) it differs: the state matters here.
    per_window = np.concatenate([stateless(w).numpy() for w in inputs], axis=1).astype("float64")
    per_window -= per_window.max(-1, keepdims=True)
    per_window -= np.log(np.exp(per_window).sum(-1, keepdims=True))
    zero_state = -np.take_along_axis(per_window, ids[..., None], -1).mean() / np.log(2.0)
    assert abs(zero_state - want) > 1e-3
    short = char_lm.Data(train_text="", validation_text=text[:10], vocabulary=list("abcdefgh"))
    assert char_lm.streamed_validation_bits(config, short, stateless) is None


def test_tbptt_training_lowers_the_loss_and_returns_a_stateless_model(tmp_path):
    config = dataclasses.replace(char_lm.RECIPE.config("tiny"), tbptt=True, batch_size=8, epochs=3)
    model, history = char_lm.train(config, out=str(tmp_path / "tbptt.keras"))
    bits = history.history["bits_per_char"]
    assert bits[-1] < bits[0] - 0.3, bits
    assert "val_bits_per_char" in history.history
    assert not model.get_layer("recurrent").stateful
    assert len(TextGenerator(char_lm.load(str(tmp_path / "tbptt.keras")))("From", 20, seed=1)[0]) == 24


def test_clipping_is_a_config_field_and_a_flag(monkeypatch):
    config = char_lm.RECIPE.config("tiny", {"clipnorm": None}, clipvalue=0.5)
    model = char_lm.build_model(config, list("ab"))
    assert model.optimizer.clipvalue == 0.5 and model.optimizer.clipnorm is None
    assert char_lm.build_model(char_lm.RECIPE.config("tiny"), list("ab")).optimizer.clipnorm == 5.0

    # --clipvalue replaces the default clipnorm (the two flags exclude each other).
    class Trained(Exception):
        pass

    def train(config, out=None):  # stops main at the Config it trains (training is tested above)
        raise Trained(config)

    monkeypatch.setattr(char_lm, "train", train)
    with pytest.raises(Trained) as stopped:
        char_lm.main(["--preset", "tiny", "--clipvalue", "0.5"])
    assert stopped.value.args[0].clipvalue == 0.5 and stopped.value.args[0].clipnorm is None


@pytest.mark.parametrize(
    "field, value",
    [
        ("embedding_dim", 0),
        ("window", 0),
        ("stride", -1),
        ("output_dropout", 1.0),
        ("tbptt", "yes"),
        ("validation_fraction", 1.0),
        ("max_characters", 0),
        ("sample_every", -1),
        ("sample_prime", ""),
        ("max_minutes", 0),
        ("lr_decay_fraction", 0.5),  # without max_minutes: nothing to time it by
    ],
)
def test_config_errors_name_the_recipes_own_fields(field, value):
    with pytest.raises((ValueError, TypeError), match=f"`{field}`"):
        char_lm.RECIPE.config("tiny", {field: value})


def test_samples_show_the_lectures_progression_at_first_early_and_at_the_end(capsys):
    # sample_every 3 over 4 epochs: before training, after epoch 1 and 3, and at the end (4).
    config = char_lm.RECIPE.config("tiny", {"sample_every": 3, "patience": 10}, epochs=4, units=8, cell="simple_rnn")
    char_lm.train(config)
    headings = re.findall(r"--- sample (.*?) ---\n", capsys.readouterr().out)
    assert headings == [
        "before training (at first: random characters)",
        "after epoch 1",
        "after epoch 3",
        "at the end (epoch 4)",
    ]


def test_the_corpus_flag_and_the_stride_that_suits_the_texts_size(monkeypatch):
    seen = {}

    class Parsed(Exception):
        pass

    def record(config, out=None):  # stands in for training: only the parsed Config matters here
        seen["config"] = config
        raise Parsed

    monkeypatch.setattr(char_lm, "train", record)
    with pytest.raises(Parsed):
        char_lm.main(["--corpus", "tiny_shakespeare", "--preset", "tiny"])
    assert seen["config"].corpus == "tiny_shakespeare" and seen["config"].text is None
    small = char_lm.Data("x" * 90_000, "y" * 10_000, ["x", "y"])
    large = char_lm.Data("x" * 900_000, "y" * 100_000, ["x", "y"])
    config = char_lm.RECIPE.config("default")
    assert char_lm.window_stride(config, small) == 10  # the sonnets: overlapping windows
    assert char_lm.window_stride(config, large) == config.window  # Tiny Shakespeare: each character once
    assert char_lm.window_stride(dataclasses.replace(config, stride=7), large) == 7
    with pytest.raises(ValueError, match=r"`corpus` must be one of \['sonnets', 'tiny_shakespeare'\]"):
        char_lm.RECIPE.config("default", {"corpus": "war_and_peace"})
