"""The sentiment recipe: its split, masking, learning, CSV and TFDS sources and the command
(the readers themselves: test_labelled_text.py)."""

import contextlib
import io

import keras
import numpy as np
import pytest
import tensorflow_datasets as tfds

import keras_rnn_lab
from keras_rnn_lab.data import labelled_text
from recipes import sentiment
from tests.files import write_csv


def tiny_config(**overrides):
    return sentiment.RECIPE.config("tiny", **overrides)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One end-to-end run of the command with the tiny preset, shared by the tests that inspect it."""
    path = str(tmp_path_factory.mktemp("sentiment") / "tiny.keras")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        result = sentiment.main(["--preset", "tiny", "--out", path])
    return result, path, printed.getvalue()


# --- data ----------------------------------------------------------------------
def test_split_is_deterministic_disjoint_stratified_and_keeps_duplicates_together():
    data = sentiment.load_data(sentiment.RECIPE.config("default"))
    again = sentiment.load_data(sentiment.RECIPE.config("default"))
    other_seed = sentiment.load_data(sentiment.RECIPE.config("default", seed=1))
    splits = [data.train, data.validation, data.test]
    total = sum(len(split) for split in splits)
    assert total == 12_808
    overall = sum(split.labels.sum() for split in splits) / total
    same_seed = [again.train, again.validation, again.test]
    new_seed = [other_seed.train, other_seed.validation, other_seed.test]
    for split, same, other, fraction in zip(splits, same_seed, new_seed, (0.8, 0.1, 0.1)):
        assert list(split.texts) == list(same.texts) and np.array_equal(split.labels, same.labels)
        assert list(split.texts) != list(other.texts)
        assert abs(len(split) / total - fraction) < 0.002
        assert abs(split.labels.mean() - overall) < 0.003  # stratified: each split has the overall share of positives
    # The corpus repeats a few snippets verbatim (so this can fail); each lands in one split only.
    assert len(set(np.concatenate([split.texts for split in splits]))) < total
    assert not set(data.train.texts) & set(data.validation.texts)
    assert not set(data.train.texts) & set(data.test.texts)
    assert not set(data.validation.texts) & set(data.test.texts)


# --- the models ------------------------------------------------------------------
def test_tiny_preset_learns(tiny_run):
    result, _, _ = tiny_run
    for model_result in (result.recurrent, result.baseline):
        loss = model_result.history["loss"]
        assert loss[-1] < loss[0] - 0.1, loss
        accuracy, _ = sentiment.evaluate(model_result.model, result.data.train)
        majority = max(result.data.train.labels.mean(), 1 - result.data.train.labels.mean())
        assert accuracy > majority + 0.1, (accuracy, majority)
        # ... and carries over to the 200 unseen test snippets (measured: about 72% against a majority of 56%).
        test_majority = max(result.data.test.labels.mean(), 1 - result.data.test.labels.mean())
        assert model_result.accuracy > test_majority + 0.05, (model_result.accuracy, test_majority)


def test_test_metrics_are_the_predictions_counted(tiny_run):
    result, _, printed = tiny_run
    test = result.data.test
    for model_result in (result.recurrent, result.baseline):
        predictions = np.argmax(model_result.model.predict(test.texts, verbose=0), axis=-1)
        expected = np.array([[np.sum((test.labels == t) & (predictions == p)) for p in (0, 1)] for t in (0, 1)])
        np.testing.assert_array_equal(model_result.confusion, expected)
        assert model_result.accuracy == pytest.approx(np.mean(predictions == test.labels))
        assert f"test accuracy {100 * model_result.accuracy:.2f}%" in printed
    assert sentiment.confusion_matrix([0, 0, 1, 1, 1], [0, 1, 1, 1, 0]).tolist() == [[1, 1], [1, 2]]


def test_padding_is_masked(tiny_run):
    """A text's logits do not depend on how much padding follows it (both directions, and the average)."""
    result, _, _ = tiny_run
    texts = ["a moving , funny film", "dull", "the plot never makes sense and the actors look bored throughout"]
    for model in (result.recurrent.model, result.baseline.model):
        classifier = model.layers[-1]  # ids (batch, time) -> logits
        ids = keras.ops.convert_to_numpy(model.get_layer("vectorizer")(np.array(texts, dtype=object)))
        lengths = np.count_nonzero(ids, axis=1)
        assert ids.shape[1] == result.config.sequence_length and len(set(lengths)) == 3
        padded = keras.ops.convert_to_numpy(classifier(ids))
        longer = keras.ops.convert_to_numpy(classifier(np.pad(ids, ((0, 0), (0, 50)))))
        np.testing.assert_allclose(longer, padded, atol=1e-5)
        for row, length in enumerate(lengths):
            alone = keras.ops.convert_to_numpy(classifier(ids[row : row + 1, :length]))  # no padding at all
            np.testing.assert_allclose(alone[0], padded[row], atol=1e-5)
        # The check can fail: the same steps as real (out-of-vocabulary) tokens do change the answer.
        unmasked = np.where(ids == 0, 1, ids)
        assert not np.allclose(keras.ops.convert_to_numpy(classifier(unmasked)), padded, atol=1e-3)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(model(np.array(texts, dtype=object))), padded, atol=1e-6)


def test_builtin_and_stacked_layers_compute_the_same_function():
    """--builtin swaps in Keras's layers: with the same weights, the same logits (2 stacked bidirectional layers)."""
    config = tiny_config(layers=2)
    vocabulary = sentiment.make_vocabulary(config, ["a good film", "a bad film", "not good at all"])
    ours = sentiment.build_model(config, vocabulary)
    builtin = sentiment.build_model(tiny_config(layers=2, builtin=True), vocabulary)
    builtin.set_weights(ours.get_weights())
    texts = np.array(["a good film", "not a bad film at all", "unknown words here"], dtype=object)
    np.testing.assert_allclose(ours.predict(texts, verbose=0), builtin.predict(texts, verbose=0), atol=1e-5)
    for model, layer_class in ((ours, keras_rnn_lab.LSTM), (builtin, keras.layers.LSTM)):
        wrappers = [layer for layer in model.layers[-1].layers if isinstance(layer, keras.layers.Bidirectional)]
        assert len(wrappers) == 2 and all(type(wrapper.forward_layer) is layer_class for wrapper in wrappers)


def test_saved_model_takes_raw_strings_and_answers_the_same(tiny_run):
    result, path, printed = tiny_run
    assert f"saved the recurrent model to {path}" in printed
    again = keras.saving.load_model(path)
    texts = result.data.test.texts[:20]
    np.testing.assert_allclose(
        again.predict(texts, verbose=0), result.recurrent.model.predict(texts, verbose=0), atol=1e-5
    )


# --- your own data -----------------------------------------------------------------
def test_csv_with_two_named_labels_maps_them_in_sorted_order(tmp_path, capsys):
    rows = [(f"great film number {i}", "pos") if i % 2 else (f"awful film number {i}", "neg") for i in range(60)]
    path = write_csv(tmp_path / "mine.csv", ["review", "verdict"], rows)
    config = tiny_config(csv_path=path, text_column="review", label_column="verdict")
    data = sentiment.load_data(config)
    assert "'neg' -> 0, 'pos' -> 1" in capsys.readouterr().out
    assert data.class_names == ("neg", "pos")
    assert data.vocabulary == sentiment.make_vocabulary(config, data.train.texts)  # adapted on training texts only
    splits = [data.train, data.validation, data.test]
    assert [len(split) for split in splits] == [48, 6, 6]
    for split in splits:  # every text keeps its own label
        assert all((label == 1) == text.startswith("great") for text, label in zip(split.texts, split.labels))


def test_command_trains_on_a_csv_of_your_own(tmp_path, rng):
    """Two labels marked by a few words among random filler: both models must find them."""
    filler = [f"w{i}" for i in range(50)]
    cues = {"good": ["great", "wonderful", "loved"], "bad": ["awful", "boring", "hated"]}
    rows = []
    for i in range(300):
        label = ("bad", "good")[i % 2]
        words = list(rng.choice(filler, size=rng.integers(3, 12))) + [str(rng.choice(cues[label]))]
        rows.append((" ".join(rng.permutation(words)), label))
    path = write_csv(tmp_path / "mine.csv", ["review", "verdict"], rows)
    argv = ["--preset", "tiny", "--csv", path, "--text-column", "review", "--label-column", "verdict", "--epochs", "8"]
    result = sentiment.main(argv)
    assert result.data.class_names == ("bad", "good") and len(result.data.test) == 30
    accuracies = (result.recurrent.accuracy, result.baseline.accuracy)
    assert min(accuracies) >= 0.9, accuracies


def test_csv_errors_name_the_argument_and_the_values(tmp_path):
    path = write_csv(tmp_path / "three.csv", ["text", "label"], [("a", "pos"), ("b", "neg"), ("c", "maybe")])
    with pytest.raises(ValueError, match=r"`label_column`.*'label'.*3 distinct values \['maybe', 'neg', 'pos'\]"):
        labelled_text.read_labelled_csv(path, "text", "label")
    with pytest.raises(ValueError, match=r"`text_column`: no column 'review'.*columns are \['text', 'label'\]"):
        sentiment.load_data(tiny_config(csv_path=path, text_column="review"))
    with pytest.raises(ValueError, match=r"`label_column`: no column 'stars'"):
        labelled_text.read_labelled_csv(path, "text", "stars")
    with pytest.raises(ValueError, match=r"`label_column`.*\['maybe'\] besides the expected labels \['neg', 'pos'\]"):
        labelled_text.read_labelled_csv(path, "text", "label", label_values={"neg": 0, "pos": 1})
    with pytest.raises(ValueError, match="`csv_path`: no such file"):
        sentiment.load_data(tiny_config(csv_path=str(tmp_path / "missing.csv")))


def test_config_and_command_line_errors():
    with pytest.raises(ValueError, match="`layers` must be a positive int; received 0"):
        tiny_config(layers=0)
    with pytest.raises(ValueError, match="`embedding_dropout`"):
        tiny_config(embedding_dropout=1.0)
    with pytest.raises(ValueError, match="`csv_path` or `tfds_name`, not both"):
        tiny_config(csv_path="a.csv", tfds_name="imdb_reviews")
    with pytest.raises(ValueError, match="`split_fractions`"):
        tiny_config(split_fractions=(0.5, 0.5, 0.5))
    for argv in (["--text-column", "review"], ["--csv", "a.csv", "--tfds", "imdb_reviews"], ["--data-dir", "d"]):
        with pytest.raises(SystemExit):
            sentiment.main(["--preset", "tiny", *argv])


# --- TFDS ------------------------------------------------------------------------
def test_tfds_catalogue_dataset_with_mock_data(tmp_path):
    config = tiny_config(tfds_name="imdb_reviews", data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=40):
        data = sentiment.load_data(config)
    assert data.class_names == ("neg", "pos") and data.source == "imdb_reviews"
    assert len(data.test) == 40 and len(data.train) + len(data.validation) == 40  # TFDS test; train cut in two
    assert 0 < len(data.validation) < len(data.train)
    assert all(isinstance(text, str) for text in data.train.texts) and set(data.train.labels.tolist()) <= {0, 1}


@pytest.mark.slow  # about a minute: TFDS's mock data through the whole command
def test_command_runs_on_a_tfds_dataset_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=40):
        result = sentiment.main(
            ["--preset", "tiny", "--tfds", "imdb_reviews", "--data-dir", str(tmp_path), "--epochs", "1"]
        )
    assert result.data.source == "imdb_reviews" and result.recurrent.confusion.sum() == 40


def test_unprepared_tfds_dataset_fails_fast_without_download(tmp_path):
    with pytest.raises(ValueError, match="`tfds_name`.*'imdb_reviews'.*without downloading"):
        sentiment.load_data(tiny_config(tfds_name="imdb_reviews", data_dir=str(tmp_path)))
