"""Translation: an encoder-decoder reads a sentence and writes its translation, word by word.

Many-to-many with different lengths (the lecture's machine translation):

    source words -> Embedding -> encoder (LSTM | GRU, optionally bidirectional) -> final state
    [START] + target words -> Embedding -> decoder (starts from that state) -> Dense(vocabulary)
                                           [optional: Luong attention over the encoder outputs]

Training uses teacher forcing: at step t the decoder reads the true word t - 1
and is scored on word t (cross-entropy over the target words and [END] only,
padding masked in loss and accuracy).  Translating feeds the decoder its own
words back, greedily or with beam search (`keras_rnn_lab.decoding`, one
compiled loop), stepping the trained decoder's cell: the same weights.

    python -m recipes.translation                       # English -> French number words
    python -m recipes.translation --split extrapolate   # train < 100,000, test 100,000 .. 999,999
    python -m recipes.translation --split extrapolate --attention
    python -m recipes.translation --tsv fra.txt         # Tatoeba-style: source<TAB>target[<TAB>...]
    python -m recipes.translation --trans-de-en         # Debian's trans-de-en, if installed
    python -m recipes.translation --tfds ted_hrlr_translate/pt_to_en --data-dir ~/tensorflow_datasets
    python -m recipes.translation --preset tiny         # seconds, for a smoke test
    python -m recipes.translation --out numbers.keras
    python -m recipes.translation translate --model numbers.keras "two hundred and eighty-one thousand"

Default data: num2words writes numbers out, "one hundred and seventy-one
thousand, two hundred" -> "cent soixante et onze mille deux cents" (real
grammar: "soixante et onze" is 71, "quatre-vingts" 80, "cents" only at the
end).  Train, validation and test numbers are drawn from 0 .. 999,999 without
replacement, so every test number is unseen.  Words are tokens (hyphenated
compounds such as "quatre-vingt-dix" are one word, punctuation is split off),
so an English number is 1-10 tokens (9.3 on average) and a French one 1-11 (6.6),
from about 100 distinct words on each side.

What to expect, measured on two CPU cores shared with other jobs (load 5-9,
so an epoch of the default took 6-28 s for the same work):

- default (LSTM 256, 20,000 training numbers, batches of 128): every
  validation word right after epoch 5, stopped after epoch 8: 157 s of
  training.  On 2,000 unseen numbers greedy and beam search (width 4) were
  both 99.90% exact, BLEU 0.9997; decoding the 2,000 took 2-3 s each.  The two
  mistakes were numbers below 1,000 (0.1% of the training numbers): "three
  hundred" came out "trente et un mille".  (An earlier run that stopped on the
  validation loss went on for 23 epochs, 249 s, for 99.95%.)
- --attention: 5 epochs, 85 s; greedy 99.70%, beam 99.75% exact (BLEU 0.9992,
  0.9994); the mistakes again mostly below 1,000 ("six hundred and
  eighty-seven": greedy "six mille six cents", beam right).
- speed: 3 epochs each, alternating, our LSTM trained in 31 and 52 s, Keras's
  (--builtin) in 43 and 57 s: 10-30% faster, within the noise of the load.
- --split extrapolate (20,000 numbers below 100,000; test 100,000 .. 999,999):
  0% exact with or without attention, although the validation numbers (below
  100,000) were 99.97-100% right word for word.  BLEU 0.28 without attention
  (greedy and beam), 0.46 with it.  Having never written a number with
  hundreds of thousands, the model writes 259,793 as "deux mille sept cent
  quatre-vingt-treize": it drops the hundreds and turns the rest into a
  thousands number it has seen.  With attention the words after "mille" come
  out right more often (in the printed examples all five, against two
  without; hence the higher BLEU), but the missing pattern is not invented.
"""

import argparse
import dataclasses
import os
import random
import re
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_rnn_lab import decoding  # noqa: E402
from keras_rnn_lab.diagnostics.bleu import corpus_bleu  # noqa: E402
from keras_rnn_lab.serving import export  # noqa: E402
from keras_rnn_lab.training import (  # noqa: E402
    add_common_arguments,
    check_clipping,
    check_positive_int,
    check_rate,
    common_overrides,
    config_from_preset,
    make_optimizer,
    positive_int,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import Regularisation, check_penalties, layer_regularisation  # noqa: E402

START, END, UNKNOWN = "[START]", "[END]", "[UNK]"  # the lookups' padding is "" (id 0)
SPLITS = ("train", "validation", "test")
NUMBER_SPLITS = ("random", "extrapolate")
TRANS_DE_EN = "/usr/share/trans/de-en"  # Debian package trans-de-en (GPL): read here, never shipped
TOKEN = re.compile(r"[\w'’-]+|[^\w\s]")  # words (with hyphens and apostrophes) or one punctuation mark


@dataclasses.dataclass
class Config(Regularisation):
    """Everything a run depends on."""

    cell: str = "lstm"
    builtin: bool = False  # True: keras.layers' layers, for comparisons
    units: int = 256  # decoder state; the reference run's size
    embedding_dim: int = 64  # a few hundred words on each side: small embeddings suffice
    bidirectional: bool = False  # encoder reads both ways, units // 2 each (concatenated: units)
    attention: bool = False  # Luong "general" attention over the encoder outputs
    # Data: number words (default), or one of tsv_path, trans_path, tfds_name.
    split: str = "random"  # numbers: "random" (unseen numbers) or "extrapolate" (train < 100,000)
    number_range: int = 1_000_000  # numbers: the random split draws from 0 .. number_range - 1
    language: str = "fr"  # numbers: num2words language of the targets (sources are English)
    train_size: int = 20_000  # numbers: pairs to train on (the reference run's 20,000)
    validation_size: int = 1_000  # numbers: for early stopping
    test_size: int = 2_000  # numbers: unseen numbers to score
    tsv_path: str = None  # a file of source<TAB>target[<TAB>ignored...] lines
    trans_path: str = None  # Debian trans-de-en style: "de | de2 :: en | en2" lines
    tfds_name: str = None  # a TFDS translation dataset with (source, target) supervised keys
    data_dir: str = None  # with tfds_name: the TFDS data directory
    validation_fraction: float = 0.1  # files: shuffled pairs held out for early stopping
    test_fraction: float = 0.1  # files: shuffled pairs held out for scoring
    max_pairs: int = None  # keep only the first N pairs of a file (after shuffling) or TFDS split
    max_vocabulary: int = 20_000  # most frequent training words per side; the rest is [UNK]
    # Training.
    epochs: int = 30  # an upper bound: early stopping ends runs sooner
    patience: int = 3  # epochs without validation progress before stopping (best weights kept)
    batch_size: int = 128  # short sequences: big batches keep the CPU busy
    learning_rate: float = 3e-3
    clipnorm: float = None  # gradient clipping (--clipnorm): each weight's gradient to at most this L2 norm
    clipvalue: float = None  # gradient clipping (--clipvalue): every entry to [-v, v]
    # Decoding.
    beam_width: int = 4
    length_penalty: float = 0.0  # 0: rank beams by log probability alone
    eval_batch_size: int = 500  # sentences decoded together
    seed: int = 0

    def __post_init__(self):
        for name in (
            "units",
            "embedding_dim",
            "number_range",
            "train_size",
            "validation_size",
            "test_size",
            "max_vocabulary",
            "epochs",
            "patience",
            "batch_size",
            "beam_width",
            "eval_batch_size",
        ):
            check_positive_int(name, getattr(self, name))
        if self.max_pairs is not None:
            check_positive_int("max_pairs", self.max_pairs)
        if self.bidirectional and self.units % 2:
            raise ValueError(
                f"Argument `units` must be even with `bidirectional` (units // 2 per direction); received {self.units}."
            )
        if self.split not in NUMBER_SPLITS:
            raise ValueError(f"Argument `split` must be one of {list(NUMBER_SPLITS)}; received {self.split!r}.")
        sources = {
            k: v
            for k, v in (("tsv_path", self.tsv_path), ("trans_path", self.trans_path), ("tfds_name", self.tfds_name))
            if v is not None
        }
        if len(sources) > 1:
            raise ValueError(f"Pass at most one of `tsv_path`, `trans_path`, `tfds_name`; received {sources}.")
        for name in ("validation_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0 < value < 0.5:
                raise ValueError(f"Argument `{name}` must be in (0, 0.5); received {value!r}.")
        check_clipping(self.clipnorm, self.clipvalue)
        for name in ("dropout", "recurrent_dropout"):
            check_rate(name, getattr(self, name))
        check_penalties(self)
        if not self.length_penalty >= 0:
            raise ValueError(f"Argument `length_penalty` must be >= 0; received {self.length_penalty!r}.")


PRESETS = {
    # Tests: 800 numbers below 1,000, a small model, small batches at a high learning rate;
    # about 10 s (with attention, every validation word right after ~10 epochs).
    "tiny": dict(
        number_range=1_000,
        units=64,
        embedding_dim=32,
        train_size=800,
        validation_size=100,
        test_size=100,
        epochs=12,
        patience=12,
        batch_size=16,
        learning_rate=1e-2,
        beam_width=3,
    ),
    "default": {},
}


# --- data ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    """Token lists per split, and the vocabularies built from the training split."""

    name: str  # where the pairs came from
    pairs: dict  # split -> (sources, targets), each a list of token lists
    source_vocabulary: list  # training words, most frequent first (no special tokens)
    target_vocabulary: list


def tokenize(text):
    """Lower-cased words and punctuation marks: "Vingt-et-un, non!" -> ["vingt-et-un", ",", "non", "!"]."""
    return TOKEN.findall(text.lower())


def number_pairs(numbers, language="fr"):
    """(English token lists, `language` token lists) of `numbers` written out by num2words."""
    from num2words import num2words

    numbers = [int(n) for n in numbers]
    return [tokenize(num2words(n)) for n in numbers], [tokenize(num2words(n, lang=language)) for n in numbers]


def number_splits(config):
    """split -> numbers; disjoint, so no test number is ever trained on.

    "random": all three drawn from 0 .. number_range - 1 (999,999).  "extrapolate": train and
    validation below 100,000, test from 100,000 .. 999,999 (longer outputs
    than any seen in training: the failure mode to look at).
    """
    rng = np.random.default_rng(config.seed)
    sizes = (config.train_size, config.validation_size, config.test_size)
    if config.split == "random":
        if sum(sizes) > config.number_range:
            raise ValueError(
                f"`train_size` + `validation_size` + `test_size` ({sum(sizes):,}) must be at most `number_range` "
                f"({config.number_range:,}): the splits are disjoint."
            )
        drawn = rng.choice(config.number_range, size=sum(sizes), replace=False)
        return dict(zip(SPLITS, np.split(drawn, np.cumsum(sizes)[:-1])))
    seen = config.train_size + config.validation_size
    if seen > 100_000:
        raise ValueError(
            f"With split='extrapolate' `train_size` + `validation_size` must be at most 100,000 (numbers below "
            f"100,000); received {seen:,}."
        )
    below = rng.choice(100_000, size=seen, replace=False)
    test = 100_000 + rng.choice(900_000, size=config.test_size, replace=False)
    return {"train": below[: config.train_size], "validation": below[config.train_size :], "test": test}


def read_tsv(path):
    """(sources, targets) text of a source<TAB>target[<TAB>...] file; extra columns are ignored."""
    pairs = []
    for number, line in _lines(path):
        columns = line.split("\t")
        if len(columns) < 2 or not columns[0].strip() or not columns[1].strip():
            raise ValueError(
                f"{path}, line {number}: expected source<TAB>target (more columns are ignored); received {line[:80]!r}."
            )
        pairs.append((columns[0], columns[1]))
    return _unzipped(pairs, path)


def read_trans(path):
    """(German, English) text of a Debian trans-de-en file: "de | de2 :: en | en2" lines.

    The alternatives separated by " | " pair up in order; annotations such as
    {m} or [Br.] are dropped and of synonyms separated by ";" the first is kept.
    Lines starting with # are comments.
    """
    pairs = []
    for number, line in _lines(path):
        if line.startswith("#"):
            continue
        sides = line.split(" :: ")
        german = sides[0].split(" | ") if len(sides) == 2 else []
        english = sides[1].split(" | ") if len(sides) == 2 else []
        if len(sides) != 2 or len(german) != len(english):
            raise ValueError(
                f"{path}, line {number}: expected 'de | de2 :: en | en2' (as many alternatives on both sides "
                f"of one ' :: '); received {line[:80]!r}."
            )
        for de, en in zip(german, english):
            de, en = _trans_phrase(de), _trans_phrase(en)
            if de and en:
                pairs.append((de, en))
    return _unzipped(pairs, path)


def _trans_phrase(text):
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", " ", text)  # {m}, {pl}, [Br.], [ugs.]
    return " ".join(text.split(";")[0].split())


def _lines(path):
    """(line number, text) of the non-blank lines of a UTF-8 file, or an error naming it."""
    if not os.path.isfile(path):
        raise ValueError(f"No such file {path!r}; expected a UTF-8 text file of sentence pairs.")
    with open(path, encoding="utf-8") as handle:
        try:
            lines = handle.read().splitlines()
        except UnicodeDecodeError as err:
            raise ValueError(f"{path}: not UTF-8 text ({err}).") from None
    return [(number, line) for number, line in enumerate(lines, 1) if line.strip()]


def _unzipped(pairs, path):
    if not pairs:
        raise ValueError(f"{path}: no sentence pairs found; expected at least one.")
    return [s for s, _ in pairs], [t for _, t in pairs]


def read_tfds(name, data_dir=None, max_pairs=None):
    """split -> (sources, targets) text of a prepared TFDS translation dataset (never downloads)."""
    import tensorflow_datasets as tfds

    from keras_rnn_lab.data.text_data import default_data_dir

    data_dir = data_dir or default_data_dir()
    texts = {}
    for split in SPLITS:
        try:
            dataset = tfds.load(name, split=split, data_dir=data_dir, download=False, as_supervised=True)
        except Exception as err:  # TFDS raises several types for "not prepared here"
            raise ValueError(
                f"Argument `tfds_name`: could not load {name!r} split {split!r} as (source, target) from "
                f"{data_dir!r} without downloading ({type(err).__name__}: {err})."
            ) from None
        if max_pairs is not None:
            dataset = dataset.take(max_pairs)
        pairs = [(s.decode("utf-8"), t.decode("utf-8")) for s, t in tfds.as_numpy(dataset)]
        texts[split] = _unzipped(pairs, f"{name} {split}")
    return texts


def shuffled_splits(sources, targets, config):
    """split -> (sources, targets): the pairs shuffled with the seed, then cut by the fractions."""
    order = list(range(len(sources)))
    random.Random(config.seed).shuffle(order)
    if config.max_pairs is not None:
        order = order[: config.max_pairs]
    n = len(order)
    n_test, n_validation = round(n * config.test_fraction), round(n * config.validation_fraction)
    if min(n_test, n_validation, n - n_test - n_validation) < 1:
        raise ValueError(f"Only {n} sentence pairs: too few to split into train, validation and test.")
    cuts = {
        "test": order[:n_test],
        "validation": order[n_test : n_test + n_validation],
        "train": order[n_test + n_validation :],
    }
    return {split: ([sources[i] for i in cuts[split]], [targets[i] for i in cuts[split]]) for split in SPLITS}


def vocabulary(token_lists, size):
    """The `size` most frequent tokens, most frequent first (ties alphabetical: deterministic)."""
    counts = {}
    for tokens in token_lists:
        for token in tokens:
            counts[token] = counts.get(token, 0) + 1
    return sorted(counts, key=lambda token: (-counts[token], token))[:size]


def load_data(config):
    """The sentence pairs as token lists, split, with training vocabularies."""
    if config.trans_path == TRANS_DE_EN and not os.path.isfile(TRANS_DE_EN):
        raise ValueError(
            f"Debian's trans-de-en is not installed here (no {TRANS_DE_EN}): `apt install trans-de-en`, "
            f"or pass the path of a file in its format."
        )
    if config.tsv_path or config.trans_path:
        path = config.tsv_path or config.trans_path
        texts = shuffled_splits(*(read_tsv(path) if config.tsv_path else read_trans(path)), config)
        name = os.path.basename(path)
    elif config.tfds_name:
        texts = read_tfds(config.tfds_name, config.data_dir, config.max_pairs)
        name = config.tfds_name
    else:
        numbers = number_splits(config)
        pairs = {split: number_pairs(numbers[split], config.language) for split in SPLITS}
        name = f"numbers en->{config.language} ({config.split} split)"
        return _data(name, pairs, config)
    pairs = {
        split: ([tokenize(s) for s in sources], [tokenize(t) for t in targets])
        for split, (sources, targets) in texts.items()
    }
    return _data(name, pairs, config)


def _data(name, pairs, config):
    sources, targets = pairs["train"]
    return Data(name, pairs, vocabulary(sources, config.max_vocabulary), vocabulary(targets, config.max_vocabulary))


def padded(token_lists, prefix=(), suffix=()):
    """(count, longest) array of strings, "" (the lookups' padding) after each list."""
    rows = [[*prefix, *tokens, *suffix] for tokens in token_lists]
    array = np.full((len(rows), max(map(len, rows))), "", dtype=object)
    for i, row in enumerate(rows):
        array[i, : len(row)] = row
    return array


# --- model ------------------------------------------------------------------------------------
def build_model(config, data):
    """{"source": (batch, time) words, "target_in": (batch, time) [START] + words} -> logits, compiled.

    The logits (batch, time, target vocabulary) carry the target padding's mask,
    which Keras applies to the loss and the accuracy.
    """
    source_lookup = keras.layers.StringLookup(vocabulary=data.source_vocabulary, mask_token="", name="source_lookup")
    target_lookup = keras.layers.StringLookup(
        vocabulary=[START, END, *data.target_vocabulary], mask_token="", name="target_lookup"
    )
    source = keras.Input((None,), dtype="string", name="source")
    target_in = keras.Input((None,), dtype="string", name="target_in")
    x = keras.layers.Embedding(
        source_lookup.vocabulary_size(), config.embedding_dim, mask_zero=True, name="source_embedding"
    )(source_lookup(source))
    encoder_units = config.units // 2 if config.bidirectional else config.units
    regularised = layer_regularisation(config)  # the same dropout and penalties in encoder and decoder
    encoder = recurrent_layer(
        config.cell,
        encoder_units,
        builtin=config.builtin,
        return_sequences=True,
        return_state=True,
        name="encoder",
        **regularised,
    )
    if config.bidirectional:
        encoder = keras.layers.Bidirectional(encoder, name="bidirectional_encoder")
    encoded, *states = encoder(x)  # (batch, time, units), then the final states
    if config.bidirectional:  # [h_fwd, (c_fwd,) h_bwd, (c_bwd)] -> [h, (c)], each (batch, units)
        half = len(states) // 2
        states = [
            keras.layers.Concatenate(name=f"encoder_state_{i}")([states[i], states[half + i]]) for i in range(half)
        ]
    y = keras.layers.Embedding(
        target_lookup.vocabulary_size(), config.embedding_dim, mask_zero=True, name="target_embedding"
    )(target_lookup(target_in))
    decoder = recurrent_layer(
        config.cell, config.units, builtin=config.builtin, return_sequences=True, name="decoder", **regularised
    )
    h = decoder(y, initial_state=states)  # (batch, time, units); teacher forcing: y is the true previous word
    if config.attention:
        h = _attend(h, encoded, keys=keras.layers.Dense(config.units, use_bias=False, name="attention_keys")(encoded))
    logits = keras.layers.Dense(target_lookup.vocabulary_size(), name="logits")(h)
    name = f"translation_{'bi' if config.bidirectional else ''}{config.cell}{'_attention' if config.attention else ''}"
    model = keras.Model({"source": source, "target_in": target_in}, logits, name=name)
    model.compile(
        optimizer=make_optimizer(config),  # Adam at config.learning_rate, clipped by config.clipnorm / clipvalue
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _attend(h, encoded, keys):
    """Luong "general" attention (Luong et al., 2015), per decoder step t:

        score(t, s) = h_t . (W_a h_s)         keys = W_a h_s, computed once per sentence
        a_t = softmax_s(score(t, s))          over the source words only (padding masked)
        context_t = sum_s a_t(s) h_s
        h~_t = tanh(W_c [context_t; h_t])     then the logits from h~_t

    No input feeding (h~_t is not fed to the next step), so the decoder still runs as
    one fast layer over the whole target in training.  `Translator.step` repeats it
    one step at a time with the same layers.
    """
    context = keras.layers.Attention(name="attention")([h, encoded, keys])  # (batch, time, units)
    joined = keras.layers.Concatenate(name="attention_concat")([context, h])
    return keras.layers.Dense(h.shape[-1], activation="tanh", name="attentional")(joined)


# --- translating ---------------------------------------------------------------------------------
class Translator:
    """Greedy and beam-search translation with a trained (or reloaded) model's own layers.

    translator = Translator(model)
    translator(["one", "hundred"])                 # -> ["cent"]
    translator.translate_batch(sources, beam_width=4)
    """

    def __init__(self, model, max_length=None):
        self.model = model
        names = {layer.name for layer in model.layers}
        needed = {"source_lookup", "source_embedding", "target_lookup", "target_embedding", "decoder", "logits"}
        missing = sorted(needed - names)
        if missing:
            raise ValueError(
                f"Argument `model` must be a model from recipes.translation.build_model; it has no layers {missing}."
            )
        self.source_lookup = model.get_layer("source_lookup")
        self.source_embedding = model.get_layer("source_embedding")
        self.bidirectional = "bidirectional_encoder" in names
        self.encoder = model.get_layer("bidirectional_encoder" if self.bidirectional else "encoder")
        self.target_embedding = model.get_layer("target_embedding")
        self.cell = model.get_layer("decoder").cell
        self.attention = "attention" in names
        if self.attention:
            self.attention_keys = model.get_layer("attention_keys")
            self.attention_layers = (model.get_layer("attention"), model.get_layer("attentional"))
        self.logits = model.get_layer("logits")
        target_lookup = model.get_layer("target_lookup")
        self.target_vocabulary = target_lookup.get_vocabulary()
        self.start, self.end = (self.target_vocabulary.index(token) for token in (START, END))
        self.max_length = max_length
        # Never emitted: padding (id 0) and [START]; the loss never asks for them.
        forbidden = np.zeros(len(self.target_vocabulary), "float32")
        forbidden[[0, self.start]] = -np.inf
        self._forbidden = tf.constant(forbidden)
        self._encode = tf.function(self.encode, reduce_retracing=True)

    def encode(self, source_ids):
        """source ids (batch, time) -> (decoder states, constants for the step)."""
        mask = tf.not_equal(source_ids, 0)
        encoded, *states = self.encoder(self.source_embedding(source_ids), mask=mask)
        if self.bidirectional:
            half = len(states) // 2
            states = [tf.concat([states[i], states[half + i]], axis=-1) for i in range(half)]
        constants = (encoded, self.attention_keys(encoded), mask) if self.attention else ()
        return states, constants

    def step(self, tokens, states, constants):
        """One decoder step: (batch,) previous words -> (log_probs (batch, vocabulary), new states)."""
        # The embedding's own table, gathered directly: the layer would attach a padding mask
        # that a cell cannot take.
        embedded = tf.gather(self.target_embedding.embeddings, tokens)  # (batch, embedding_dim)
        output, states = self.cell(embedded, states, training=False)  # (batch, units)
        if self.attention:
            encoded, keys, mask = constants
            context = self.attention_layers[0]([output[:, tf.newaxis], encoded, keys], mask=[None, mask])[:, 0]
            output = self.attention_layers[1](tf.concat([context, output], axis=-1))
        log_probs = tf.nn.log_softmax(self.logits(output) + self._forbidden)
        return log_probs, list(states) if isinstance(states, (list, tuple)) else [states]

    def translate_ids(self, sources, beam_width=1, max_length=None, length_penalty=0.0):
        """token lists -> (tokens (batch, max_length) ids, lengths): one compiled search."""
        max_length = max_length or self.max_length or 2 * max(map(len, sources)) + 2
        source_words = tf.constant(padded(sources).astype(str))
        return self.search(source_words, beam_width, max_length, length_penalty)

    def search(self, source_words, beam_width, max_length, length_penalty=0.0):
        """(batch, time) source words, "" as padding -> (tokens, lengths) of the
        greedy (beam_width 1) or beam search; TensorFlow ops, so an export traces it."""
        states, constants = self._encode(self.source_lookup(source_words))
        if beam_width == 1:
            return decoding.greedy_decode(self.step, states, self.start, self.end, max_length, constants)
        tokens, lengths, _ = decoding.beam_search(
            self.step, states, self.start, self.end, max_length, beam_width, constants, length_penalty
        )
        return tokens, lengths

    def translate_batch(self, sources, beam_width=1, max_length=None, length_penalty=0.0, batch_size=500):
        """Token lists -> translated token lists (without [END])."""
        if not sources:
            return []
        words = []
        for start in range(0, len(sources), batch_size):
            tokens, lengths = self.translate_ids(
                sources[start : start + batch_size], beam_width, max_length, length_penalty
            )
            for row, length in zip(tokens.numpy(), lengths.numpy()):
                row = row[:length]
                if length and row[-1] == self.end:
                    row = row[:-1]
                words.append([self.target_vocabulary[i] for i in row])
        return words

    def __call__(self, source, beam_width=1):
        """One sentence (text or token list) -> its translation as a token list."""
        tokens = tokenize(source) if isinstance(source, str) else list(source)
        return self.translate_batch([tokens], beam_width)[0]


# --- training ------------------------------------------------------------------------------------
@dataclasses.dataclass
class TrainResult:
    """What `train` returns."""

    config: Config
    model: keras.Model
    history: dict  # keras History.history
    scores: dict  # "greedy" | "beam" -> {"exact_match", "bleu"} on the test split
    translations: dict  # "greedy" | "beam" -> test translations (token lists)
    seconds: float  # wall time of data, model, fit
    decode_seconds: dict  # "greedy" | "beam" -> wall time of translating the test split
    data: Data


def teacher_forcing_dataset(model, sources, targets, batch_size, shuffle_seed=None):
    """tf.data of ({"source", "target_in"}, target ids): target_in is [START] + words, the
    targets are words + [END], both padded with "" / 0."""
    target_ids = model.get_layer("target_lookup")(tf.constant(padded(targets, suffix=[END]).astype(str)))
    inputs = {"source": padded(sources).astype(str), "target_in": padded(targets, prefix=[START]).astype(str)}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, target_ids))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(sources), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def scores(references, hypotheses):
    """{"exact_match": fraction of identical token lists, "bleu": corpus BLEU}."""
    exact = float(np.mean([r == h for r, h in zip(references, hypotheses)]))
    return {"exact_match": exact, "bleu": corpus_bleu(references, hypotheses)}


def train(config, data=None, verbose=0):
    """Fit with teacher forcing and early stopping, then translate the test split greedily and with beams."""
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    data = load_data(config) if data is None else data
    model = build_model(config, data)
    history = model.fit(
        teacher_forcing_dataset(model, *data.pairs["train"], config.batch_size, shuffle_seed=config.seed),
        validation_data=teacher_forcing_dataset(model, *data.pairs["validation"], config.batch_size),
        epochs=config.epochs,
        # Stop on the validation words right: on number words the validation loss kept
        # creeping down for 20+ epochs after every validation word was right (epoch 5).
        callbacks=stop_early("val_accuracy", config.patience, reduce_lr_patience=1, mode="max"),
        shuffle=False,  # the dataset shuffles itself every epoch
        verbose=verbose,
    )
    seconds = time.perf_counter() - start
    sources, references = data.pairs["test"]
    translator = Translator(model, max_length=2 * max(map(len, data.pairs["train"][1])) + 2)
    translations, results, decode_seconds = {}, {}, {}
    for method, width in (("greedy", 1), ("beam", config.beam_width)):
        tic = time.perf_counter()
        translations[method] = translator.translate_batch(
            sources, width, length_penalty=config.length_penalty, batch_size=config.eval_batch_size
        )
        decode_seconds[method] = time.perf_counter() - tic
        results[method] = scores(references, translations[method])
    return TrainResult(config, model, history.history, results, translations, seconds, decode_seconds, data)


def format_report(result, examples=5):
    """Exact match and BLEU of both searches, then a few test sentences greedy got wrong."""
    config, data = result.config, result.data
    counts = " / ".join(f"{len(data.pairs[split][0]):,} {split}" for split in SPLITS)
    model = f"{'bidirectional ' if config.bidirectional else ''}{config.cell}{' (keras)' if config.builtin else ''}"
    model += f" {config.units}{' + attention' if config.attention else ''}"
    epochs = len(result.history["loss"])
    lines = [f"{data.name}: {counts} pairs; {model}", f"{epochs} epochs, {result.seconds:.0f} s training", ""]
    lines.append(f"{'test':<18}{'exact match':>12}{'BLEU':>8}{'seconds':>9}")
    for method, label in (("greedy", "greedy"), ("beam", f"beam (width {config.beam_width})")):
        s = result.scores[method]
        lines.append(f"{label:<18}{s['exact_match']:>12.4f}{s['bleu']:>8.4f}{result.decode_seconds[method]:>9.1f}")
    sources, references = data.pairs["test"]
    wrong = [i for i, (r, h) in enumerate(zip(references, result.translations["greedy"])) if r != h]
    if wrong:
        lines += ["", f"greedy mistakes ({len(wrong)} of {len(references)}), the first {min(examples, len(wrong))}:"]
        for i in wrong[:examples]:
            lines += [
                f"  {' '.join(sources[i])}",
                f"    expected {' '.join(references[i])}",
                f"    greedy   {' '.join(result.translations['greedy'][i])}",
                f"    beam     {' '.join(result.translations['beam'][i])}",
            ]
    return "\n".join(lines)


# --- export ------------------------------------------------------------------------------------
SERVED_MAX_LENGTH = 64  # the longest translation a served model writes, in words


def graph_tokens(text):
    """`tokenize` inside the graph: (batch,) strings -> (batch, words) padded with "".
    Lower-cased, each punctuation mark its own word (RE2's Unicode classes
    stand for Python's \\w)."""
    lowered = tf.strings.lower(text, encoding="utf-8")
    spaced = tf.strings.regex_replace(lowered, r"([^\pL\pN_\s'’-])", r" \1 ")
    return tf.strings.split(spaced).to_tensor(default_value="")


def serving_endpoints(model, beam_width=4, max_length=SERVED_MAX_LENGTH):
    """SavedModel signatures (`keras_rnn_lab.serving.export`): "translate" (greedy) and
    "translate_beam" (`beam_width` beams), each text (batch,) raw source
    sentences -> translation (batch,) strings, words joined by spaces.
    Tokenizing, both lookups and the whole search run inside the graph."""
    translator = Translator(model, max_length=max_length)
    vocabulary = tf.constant(translator.target_vocabulary)

    def translate_with(width):
        def translate(text):
            tokens, lengths = translator.search(graph_tokens(text), width, max_length)  # (batch, max_length)
            positions = tf.range(tf.shape(tokens)[1])[tf.newaxis, :]
            keep = (positions < lengths[:, tf.newaxis]) & (tokens != translator.end)
            words = tf.ragged.boolean_mask(tf.gather(vocabulary, tokens), keep)
            return {"translation": tf.strings.reduce_join(words, axis=-1, separator=" ")}

        return export.Endpoint(translate, [tf.TensorSpec((None,), tf.string, name="text")])

    return {"translate": translate_with(1), "translate_beam": translate_with(beam_width)}


def _translate_command(argv):
    parser = argparse.ArgumentParser(
        prog="python -m recipes.translation translate", description="Translate sentences with a saved model."
    )
    parser.add_argument("--model", required=True, help="a .keras file saved by training (--out)")
    parser.add_argument("--beam-width", dest="beam_width", type=positive_int, default=4, help="1 = greedy")
    parser.add_argument("sentences", nargs="+", help="sentences in the source language")
    args = parser.parse_args(argv)
    with usage_errors(parser):
        if not os.path.isfile(args.model):
            raise ValueError(f"Argument --model: no such file {args.model!r}.")
        translator = Translator(keras.saving.load_model(args.model))
    translations = translator.translate_batch([tokenize(s) for s in args.sentences], args.beam_width)
    for sentence, words in zip(args.sentences, translations):
        print(f"{sentence}\t{' '.join(words)}")
    return translations


def main(argv=None):
    """Train once, print exact match and BLEU of greedy and beam search; returns the TrainResult.
    `translate --model M.keras SENTENCE...` translates with a saved model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["translate"]:
        return _translate_command(argv[1:])
    if argv[:1] == ["export"]:
        return export.export_command(
            argv[1:], "python -m recipes.translation", keras.saving.load_model, serving_endpoints
        )
    parser = argparse.ArgumentParser(
        prog="python -m recipes.translation", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, help="encoder reads both ways")
    parser.add_argument("--attention", action=argparse.BooleanOptionalAction, help="Luong attention over the encoder")
    parser.add_argument(
        "--split", choices=NUMBER_SPLITS, help="numbers: random (default) or extrapolate (train < 100,000)"
    )
    parser.add_argument("--train-size", dest="train_size", type=positive_int, help="numbers: training pairs")
    parser.add_argument("--test-size", dest="test_size", type=positive_int, help="numbers: test pairs")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tsv", dest="tsv_path", help="source<TAB>target pairs, one a line")
    source.add_argument(
        "--trans-de-en",
        dest="trans_path",
        nargs="?",
        const=TRANS_DE_EN,
        help=f"Debian trans-de-en pairs (default path {TRANS_DE_EN})",
    )
    source.add_argument("--tfds", dest="tfds_name", help="a prepared TFDS dataset, e.g. ted_hrlr_translate/pt_to_en")
    parser.add_argument("--data-dir", dest="data_dir", help="with --tfds: the TFDS data directory")
    parser.add_argument("--max-pairs", dest="max_pairs", type=positive_int, help="files and TFDS: use only N pairs")
    parser.add_argument("--beam-width", dest="beam_width", type=positive_int, help="beams kept per sentence")
    args = parser.parse_args(argv)
    names = (
        "bidirectional",
        "attention",
        "split",
        "train_size",
        "test_size",
        "tsv_path",
        "trans_path",
        "tfds_name",
        "data_dir",
        "max_pairs",
        "beam_width",
    )
    with usage_errors(parser):  # bad values and malformed files stop the command before training
        config = config_from_preset(
            Config, PRESETS, args.preset, **{n: getattr(args, n) for n in names}, **common_overrides(args)
        )
        data = load_data(config)
    result = train(config, data, verbose=2)
    if args.out is not None:
        result.model.save(args.out)
    print(format_report(result))
    return result


if __name__ == "__main__":
    main()
