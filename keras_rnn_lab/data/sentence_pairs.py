"""Sentence pairs for translation: number words, TSV and trans-de-en files, TFDS.

Every reader returns text; `tokenize` turns it into token lists (lower-cased
words, with hyphens and apostrophes, and punctuation marks), `vocabulary`
counts a split's tokens and `padded` makes the (count, longest) string array a
`keras.layers.StringLookup` reads ("" is padding).

    sources, targets = read_tsv("fra.txt")                      # source<TAB>target[<TAB>...]
    splits = shuffled_splits(sources, targets, seed=0)          # split -> (sources, targets)
    numbers = number_splits((20_000, 1_000, 2_000))              # split -> numbers
    sources, targets = number_pairs(numbers["train"], "fr")     # token lists, via num2words
"""

import itertools
import os
import random
import re

import numpy as np

from keras_rnn_lab._validation import check_positive_int
from keras_rnn_lab.data import tfds_local
from keras_rnn_lab.data.text_files import read_text
from keras_rnn_lab.errors import UsageError

SPLITS = ("train", "validation", "test")
START, END = "[START]", "[END]"  # a decoder's target side: reads [START] + words, writes words + [END]
NUMBER_SPLITS = ("random", "extrapolate")
TRANS_DE_EN = "/usr/share/trans/de-en"  # Debian package trans-de-en (GPL): read there, never shipped
TSV_ARGUMENT = "--tsv or `tsv_path`"  # translation's flags, and its Config fields
TRANS_ARGUMENT = "--trans-de-en or `trans_path`"
TOKEN = re.compile(r"[\w'’-]+|[^\w\s]")  # words (with hyphens and apostrophes) or one punctuation mark


# --- tokens ---------------------------------------------------------------------------------
def tokenize(text):
    """Lower-cased words and punctuation marks: "Vingt-et-un, non!" -> ["vingt-et-un", ",", "non", "!"]."""
    return TOKEN.findall(text.lower())


def graph_tokens(text):
    """`tokenize` inside the graph: (batch,) strings -> (batch, words) padded with "".
    Lower-cased, each punctuation mark its own word (RE2's Unicode classes
    stand for Python's \\w).  TensorFlow ops, so a SavedModel can hold it."""
    import tensorflow as tf

    lowered = tf.strings.lower(text, encoding="utf-8")
    spaced = tf.strings.regex_replace(lowered, r"([^\pL\pN_\s'’-])", r" \1 ")
    return tf.strings.split(spaced).to_tensor(default_value="")


def vocabulary(token_lists, size):
    """The `size` most frequent tokens, most frequent first (ties alphabetical: deterministic)."""
    counts = {}
    for tokens in token_lists:
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
    return sorted(counts, key=lambda token: (-counts[token], token))[:size]


def padded(token_lists, prefix=(), suffix=()):
    """(count, longest) array of strings, "" (the lookups' padding) after each list."""
    rows = [[*prefix, *tokens, *suffix] for tokens in token_lists]
    array = np.full((len(rows), max(map(len, rows))), "", dtype=object)
    for i, row in enumerate(rows):
        array[i, : len(row)] = row
    return array


# --- number words ------------------------------------------------------------------------------
def number_pairs(numbers, language="fr"):
    """(English token lists, `language` token lists) of `numbers` written out by num2words."""
    from num2words import num2words

    numbers = [int(n) for n in numbers]
    return [tokenize(num2words(n)) for n in numbers], [tokenize(num2words(n, lang=language)) for n in numbers]


def number_splits(sizes, split="random", number_range=1_000_000, seed=0):
    """split -> numbers, `sizes` = (train, validation, test) counts; disjoint, so no
    test number is ever trained on.

    "random": all three drawn from 0 .. number_range - 1.  "extrapolate": train and
    validation below 100,000, test from 100,000 .. 999,999 (longer outputs
    than any seen in training: the failure mode to look at).
    """
    if split not in NUMBER_SPLITS:
        raise ValueError(f"Argument `split` must be one of {list(NUMBER_SPLITS)}; received {split!r}.")
    train_size, validation_size, test_size = (
        check_positive_int(name, size) for name, size in zip(("train_size", "validation_size", "test_size"), sizes)
    )
    rng = np.random.default_rng(seed)
    if split == "random":
        if sum(sizes) > number_range:
            raise ValueError(
                f"`train_size` + `validation_size` + `test_size` ({sum(sizes):,}) must be at most `number_range` "
                f"({number_range:,}): the splits are disjoint."
            )
        drawn = rng.choice(number_range, size=sum(sizes), replace=False)
        return dict(zip(SPLITS, np.split(drawn, np.cumsum(sizes)[:-1])))
    seen = train_size + validation_size
    if seen > 100_000:
        raise ValueError(
            f"With split='extrapolate' `train_size` + `validation_size` must be at most 100,000 (numbers below "
            f"100,000); received {seen:,}."
        )
    below = rng.choice(100_000, size=seen, replace=False)
    test = 100_000 + rng.choice(900_000, size=test_size, replace=False)
    return {"train": below[:train_size], "validation": below[train_size:], "test": test}


# --- files ------------------------------------------------------------------------------------
def read_tsv(path, argument=TSV_ARGUMENT):
    """(sources, targets) text of a source<TAB>target[<TAB>...] file; extra columns are ignored.
    A file that is not such UTF-8 text is a UsageError naming `argument`."""
    pairs = []
    for number, line in _lines(path, argument):
        columns = line.split("\t")
        if len(columns) < 2 or not columns[0].strip() or not columns[1].strip():
            raise UsageError(
                f"argument {argument}: {path}, line {number}: expected source<TAB>target (more columns are "
                f"ignored); received {line[:80]!r}."
            )
        pairs.append((columns[0], columns[1]))
    return _unzipped(pairs, f"argument {argument}: {path}")


def read_trans(path, argument=TRANS_ARGUMENT):
    """(German, English) text of a Debian trans-de-en file: "de | de2 :: en | en2" lines.

    The alternatives separated by " | " pair up in order; annotations such as
    {m} or [Br.] are dropped and of synonyms separated by ";" the first is kept.
    Lines starting with # are comments.  A file that is not such UTF-8 text
    is a UsageError naming `argument`.
    """
    if path == TRANS_DE_EN and not os.path.isfile(TRANS_DE_EN):
        raise UsageError(
            f"argument {argument}: Debian's trans-de-en is not installed here (no {TRANS_DE_EN}): "
            "`apt install trans-de-en`, or pass the path of a file in its format."
        )
    pairs = []
    for number, line in _lines(path, argument):
        if line.startswith("#"):
            continue
        sides = line.split(" :: ")
        german = sides[0].split(" | ") if len(sides) == 2 else []
        english = sides[1].split(" | ") if len(sides) == 2 else []
        if len(sides) != 2 or len(german) != len(english):
            raise UsageError(
                f"argument {argument}: {path}, line {number}: expected 'de | de2 :: en | en2' (as many "
                f"alternatives on both sides of one ' :: '); received {line[:80]!r}."
            )
        for de, en in zip(german, english):
            de, en = _trans_phrase(de), _trans_phrase(en)
            if de and en:
                pairs.append((de, en))
    return _unzipped(pairs, f"argument {argument}: {path}")


def _trans_phrase(text):
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # {m}, {pl}, [Br.], [ugs.]
    return " ".join(text.split(";")[0].split())


def _lines(path, argument):
    """(line number, text) of the non-blank lines of a UTF-8 file, or a UsageError naming it."""
    lines = read_text(path, argument, "a UTF-8 text file of sentence pairs").splitlines()
    return [(number, line) for number, line in enumerate(lines, 1) if line.strip()]


def _unzipped(pairs, where):
    """(sources, targets) of `pairs`, read from `where` (for the message: a file, a TFDS split)."""
    if not pairs:
        raise UsageError(f"{where}: no sentence pairs found; expected at least one.")
    return [s for s, _ in pairs], [t for _, t in pairs]


def shuffled_splits(sources, targets, seed=0, validation_fraction=0.1, test_fraction=0.1, max_pairs=None, groups=None):
    """split -> (sources, targets): the pairs shuffled with `seed`, the first
    `max_pairs` kept, then cut by the fractions.

    groups: one key per pair (e.g. its source tokens as a tuple), or None.
    Pairs with the same key move as one unit: they land in the same split
    (a test source is then never a training source), and each cut falls at
    the first group boundary at or after its count.  Without groups every
    pair is its own group: the same shuffle and cuts as always."""
    members = {}
    for i, key in enumerate(range(len(sources)) if groups is None else groups):
        members.setdefault(key, []).append(i)
    units = list(members.values())  # first appearance order, so a seed gives one shuffle
    random.Random(seed).shuffle(units)
    order = [i for unit in units for i in unit]
    ends = list(itertools.accumulate(map(len, units)))  # where each group ends in `order`

    def boundary(count):  # the first group end at or after `count` pairs
        return next((end for end in ends if end >= count), len(order))

    if max_pairs is not None:
        order = order[: boundary(max_pairs)]
    n = len(order)
    n_test, n_validation = round(n * test_fraction), round(n * validation_fraction)
    test_end = boundary(n_test)
    validation_end = boundary(test_end + n_validation)
    if min(n_test, n_validation, n - validation_end) < 1:
        raise ValueError(f"Only {n} sentence pairs: too few to split into train, validation and test.")
    cuts = {"test": order[:test_end], "validation": order[test_end:validation_end], "train": order[validation_end:]}
    return {split: ([sources[i] for i in cuts[split]], [targets[i] for i in cuts[split]]) for split in SPLITS}


# --- TFDS -------------------------------------------------------------------------------------
def read_tfds(name, data_dir=None, max_pairs=None):
    """split -> (sources, targets) text of a prepared TFDS translation dataset
    with (source, target) supervised keys (never downloads)."""
    texts = {}
    for split in SPLITS:
        dataset = tfds_local.load_prepared(name, split, data_dir, what="as (source, target)", as_supervised=True)
        if max_pairs is not None:
            dataset = dataset.take(max_pairs)
        pairs = [(s.decode("utf-8"), t.decode("utf-8")) for s, t in tfds_local.as_numpy(dataset)]
        texts[split] = _unzipped(pairs, f"argument --tfds or `tfds_name`: {name} {split}")
    return texts
