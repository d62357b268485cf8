"""Offline text loading: the shipped sonnets through TFDS, user files, catalogue names."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from keras_rnn_lab.data import text_data
from keras_rnn_lab.errors import RunError, UsageError


def test_sonnets_prepare_offline_and_load_through_tfds(tmp_path):
    text = text_data.load_text(data_dir=str(tmp_path))
    shipped = (text_data.CORPORA / "sonnets.txt").read_text(encoding="utf-8")
    assert text == shipped and text.startswith("THE SONNETS") and len(text) == 95728
    # A fresh builder reads the prepared files back; nothing is downloaded.
    reread = tfds.builder_from_directory(str(tmp_path / "keras_rnn_lab_sonnets" / "1.0.0"))
    assert next(iter(tfds.as_numpy(reread.as_dataset(split="train"))))["text"].decode() == shipped


def test_user_file(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("to be or not to be", encoding="utf-8")
    assert text_data.load_text(text_path=str(path)) == "to be or not to be"


def test_missing_and_empty_files_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="`text_path`: no such file"):
        text_data.load_text(text_path=str(tmp_path / "nope.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        text_data.load_text(text_path=str(empty))


def test_tfds_catalogue_name_with_mock_data(tmp_path):
    with tfds.testing.mock_data(num_examples=2, as_dataset_fn=None):
        text = text_data.load_text(tfds_name="tiny_shakespeare", data_dir=str(tmp_path))
    assert isinstance(text, str) and len(text) > 0


def test_unprepared_catalogue_name_fails_fast_without_download(tmp_path):
    with pytest.raises(ValueError, match="`tfds_name`.*without downloading"):
        text_data.load_text(tfds_name="tiny_shakespeare", data_dir=str(tmp_path))


def test_split_is_contiguous():
    train, validation = text_data.split_text("abcdefghij", 0.2)
    assert (train, validation) == ("abcdefgh", "ij")
    with pytest.raises(ValueError, match="`validation_fraction`"):
        text_data.split_text("abc", 1.0)


def test_windows_are_inputs_and_next_characters():
    text = "abcdefghijklmnop"
    batches = list(text_data.char_windows(text, window=4, stride=3, batch_size=2).as_numpy_iterator())
    inputs = np.concatenate([b[0] for b in batches]).astype(str)
    targets = np.concatenate([b[1] for b in batches]).astype(str)
    starts = range(0, len(text) - 4, 3)
    assert ["".join(row) for row in inputs] == [text[s : s + 4] for s in starts]
    assert ["".join(row) for row in targets] == [text[s + 1 : s + 5] for s in starts]
    with pytest.raises(ValueError, match="`window`"):
        text_data.char_windows("abc", window=5, stride=1, batch_size=1)


def test_tiny_shakespeare_ships_and_loads_offline_through_its_tfds_builder(tmp_path):
    text = text_data.load_text(corpus="tiny_shakespeare", data_dir=str(tmp_path))
    assert len(text) == 1_115_394 and len(set(text)) == 65  # the standard file (char-rnn's input.txt)
    assert text.startswith("First Citizen:\nBefore we proceed any further, hear me speak.")
    assert (tmp_path / "keras_rnn_lab_tiny_shakespeare").is_dir()  # prepared by a real TFDS builder


def test_a_damaged_corpus_file_is_a_clear_error(tmp_path, monkeypatch):
    damaged = tmp_path / "corpora"
    damaged.mkdir()
    (damaged / "tinyshakespeare.txt.bz2").write_bytes(b"BZh91AY&SY not really bzip2")
    monkeypatch.setattr(text_data, "CORPORA", damaged)
    with pytest.raises(RunError, match=r"tinyshakespeare\.txt\.bz2' shipped with keras_rnn_lab is damaged"):
        text_data.load_text(corpus="tiny_shakespeare", data_dir=str(tmp_path / "data"))
    with pytest.raises(UsageError, match=r"--corpus or `corpus`: expected one of \['sonnets', 'tiny_shakespeare'\]"):
        text_data.load_text(corpus="war_and_peace", data_dir=str(tmp_path / "data"))
