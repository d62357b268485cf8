"""keras_rnn_lab.data.labelled_text: the shipped snippets, the CSV reader and the stratified split
(the sentiment recipe's tests use them end to end)."""

import bz2
import csv
import io

import numpy as np
import pytest

from keras_rnn_lab.data import labelled_text, text_data
from tests.files import write_csv


def test_shipped_snippets_are_the_reviews_with_fresh_positive_and_no_plot_rows():
    texts, labels = labelled_text.load_rotten_tomatoes()
    # Reference: the shipped file read directly, row by row.
    with (text_data.CORPORA / labelled_text.ROTTEN_TOMATOES_FILE).open("rb") as raw:
        rows = list(csv.DictReader(io.TextIOWrapper(bz2.open(raw), encoding="utf-8", newline="")))
    reviews = [row for row in rows if row["category"] != "plot"]
    plots = {row["text"] for row in rows if row["category"] == "plot"}
    assert len(rows) == 13_905 and len(texts) == len(reviews) == 12_808
    assert list(texts) == [row["text"] for row in reviews]
    np.testing.assert_array_equal(labels, [1 if row["category"] == "fresh" else 0 for row in reviews])
    assert np.bincount(labels).tolist() == [5_405, 7_403]  # rotten, fresh
    assert plots and not plots & set(texts)


def test_split_indices_cut_each_class_at_the_fractions():
    labels = np.array([0] * 100 + [1] * 50)
    parts = labelled_text.split_indices(labels, (0.8, 0.1, 0.1), seed=3)
    assert [np.bincount(labels[part], minlength=2).tolist() for part in parts] == [[80, 40], [10, 5], [10, 5]]
    assert sorted(np.concatenate(parts).tolist()) == list(range(150))  # disjoint and complete
    for part, same in zip(parts, labelled_text.split_indices(labels, (0.8, 0.1, 0.1), seed=3)):
        np.testing.assert_array_equal(part, same)
    with pytest.raises(ValueError, match="`fractions`"):
        labelled_text.split_indices(labels, (0.8, 0.3), seed=0)


def test_csv_with_0_1_labels(tmp_path, capsys):
    path = write_csv(tmp_path / "ids.csv", ["text", "label"], [(f"text {i}", i % 2) for i in range(30)])
    texts, labels, class_names = labelled_text.read_labelled_csv(path, "text", "label")
    assert labels.tolist() == [i % 2 for i in range(30)] and class_names == ("0", "1")
    assert capsys.readouterr().out == ""  # nothing to explain: 0 is 0 and 1 is 1
