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
    python -m recipes.translation --preset tiny --out numbers.keras   # seconds, a smoke test
    python -m recipes.translation translate --model numbers.keras "two hundred and eighty-one thousand"

Default data: numbers written out by num2words ("one hundred and seventy-one
thousand" -> "cent soixante et onze mille"), every test number unseen.

What to expect (default preset, two CPU cores): every validation word right
after about 5 epochs, 2-3 minutes of training; greedy and beam search (width 4)
both 99.9% exact on 2,000 unseen numbers, BLEU 0.9997.  With `--split
extrapolate` 0% exact: a model never shown hundreds of thousands cannot write them.
"""

import argparse
import dataclasses
import os
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_rnn_lab import training
from keras_rnn_lab.data import sentence_pairs
from keras_rnn_lab.data.sentence_pairs import END, START, graph_tokens, padded, tokenize  # noqa: F401
from keras_rnn_lab.diagnostics.bleu import bleu_scores
from keras_rnn_lab.training import (
    Recipe,
    TrainingConfig,
    add_common_arguments,
    check_number,
    check_positive_int,
    common_overrides,
    config_from_preset,
    make_optimizer,
    positive_int,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import layer_regularisation
from recipes.parts.translation_report import format_report
from recipes.parts.translation_translator import (  # noqa: F401  (serving's names, as they were here)
    SERVED_MAX_LENGTH,
    Translator,
    numeric_endpoints,
    serving_endpoints,
    translate_command,
)


@dataclasses.dataclass
class Config(TrainingConfig):
    """Everything a run depends on; the shared training fields come from TrainingConfig."""

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
    epochs: int = 30  # an upper bound: early stopping on validation accuracy ends runs sooner
    batch_size: int = 128  # short sequences: big batches keep the CPU busy
    learning_rate: float = 3e-3
    # Decoding.
    beam_width: int = 4
    length_penalty: float = 0.0  # 0: rank beams by log probability alone
    eval_batch_size: int = 500  # sentences decoded together

    def __post_init__(self):
        super().__post_init__()
        names = ("embedding_dim", "number_range", "train_size", "validation_size", "test_size", "max_vocabulary")
        for name in names + ("beam_width", "eval_batch_size"):
            check_positive_int(name, getattr(self, name))
        if self.max_pairs is not None:
            check_positive_int("max_pairs", self.max_pairs)
        if self.bidirectional and self.units % 2:
            raise ValueError(
                f"Argument `units` must be even with `bidirectional` (units // 2 per direction); received {self.units}."
            )
        splits = list(sentence_pairs.NUMBER_SPLITS)
        if self.split not in splits:
            raise ValueError(f"Argument `split` must be one of {splits}; received {self.split!r}.")
        sources = {name: getattr(self, name) for name in ("tsv_path", "trans_path", "tfds_name")}
        sources = {name: value for name, value in sources.items() if value is not None}
        if len(sources) > 1:
            raise ValueError(f"Pass at most one of `tsv_path`, `trans_path`, `tfds_name`; received {sources}.")
        for name in ("validation_fraction", "test_fraction"):
            check_number(name, getattr(self, name), "(0, 0.5)", lambda x: 0 < x < 0.5)
        check_number("length_penalty", self.length_penalty, "[0, inf)", lambda x: x >= 0)


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


def load_data(config):
    """The sentence pairs as token lists, split, with training vocabularies."""
    if config.tsv_path or config.trans_path:
        path = config.tsv_path or config.trans_path
        read = sentence_pairs.read_tsv if config.tsv_path else sentence_pairs.read_trans
        texts = sentence_pairs.shuffled_splits(
            *read(path), config.seed, config.validation_fraction, config.test_fraction, config.max_pairs
        )
        name = os.path.basename(path)
    elif config.tfds_name:
        texts = sentence_pairs.read_tfds(config.tfds_name, config.data_dir, config.max_pairs)
        name = config.tfds_name
    else:
        sizes = (config.train_size, config.validation_size, config.test_size)
        numbers = sentence_pairs.number_splits(sizes, config.split, config.number_range, config.seed)
        pairs = {split: sentence_pairs.number_pairs(numbers[split], config.language) for split in sentence_pairs.SPLITS}
        return _with_vocabularies(f"numbers en->{config.language} ({config.split} split)", pairs, config)
    pairs = {split: tuple([tokenize(text) for text in side] for side in sides) for split, sides in texts.items()}
    return _with_vocabularies(name, pairs, config)


def _with_vocabularies(name, pairs, config):
    sources, targets = pairs["train"]
    return Data(name, pairs, *(sentence_pairs.vocabulary(side, config.max_vocabulary) for side in (sources, targets)))


# --- model ------------------------------------------------------------------------------------
def build_model(config, data, prefix="translation"):
    """{"source": (batch, time) words, "target_in": (batch, time) [START] + words} -> logits, compiled.

    The logits (batch, time, target vocabulary) carry the target padding's mask,
    which Keras applies to the loss and the accuracy.  `prefix` starts the
    model's name (recipes.dialogue builds this same model as its own).
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
    name = f"{prefix}_{'bi' if config.bidirectional else ''}{config.cell}{'_attention' if config.attention else ''}"
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


# --- training ------------------------------------------------------------------------------------
def teacher_forcing_dataset(model, sources, targets, batch_size, shuffle_seed=None):
    """tf.data of ({"source", "target_in"}, target ids): target_in is [START] + words, the
    targets are words + [END], both padded with "" / 0."""
    target_ids = model.get_layer("target_lookup")(tf.constant(padded(targets, suffix=[END]).astype(str)))
    inputs = {"source": padded(sources).astype(str), "target_in": padded(targets, prefix=[START]).astype(str)}
    dataset = tf.data.Dataset.from_tensor_slices((inputs, target_ids))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(sources), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def fit_arguments(config, model, data):
    """`model.fit` on the training pairs (reshuffled every epoch, seeded), validated on the validation pairs."""
    return {
        "x": teacher_forcing_dataset(model, *data.pairs["train"], config.batch_size, shuffle_seed=config.seed),
        "validation_data": teacher_forcing_dataset(model, *data.pairs["validation"], config.batch_size),
        "shuffle": False,  # the dataset shuffles itself every epoch
    }


def stop_on_validation_accuracy(config):
    """Early stopping on the validation words right: on number words the validation loss kept
    creeping down for 20+ epochs after every validation word was right (epoch 5)."""
    return stop_early("val_accuracy", config.patience, reduce_lr_patience=1, mode="max")


RECIPE = Recipe.of(
    __name__,
    count_examples=lambda data: sum(len(target) + 1 for target in data.pairs["train"][1]),  # the words and [END]
    example_unit="training target words",
    callbacks=stop_on_validation_accuracy,
)


# --- training and evaluation ---------------------------------------------------------------------
@dataclasses.dataclass
class TrainResult:
    """What `train` returns."""

    config: Config
    model: keras.Model
    history: dict  # keras History.history
    scores: dict  # "greedy" | "beam" -> {"exact_match", "bleu", "sacrebleu"} on the test split
    translations: dict  # "greedy" | "beam" -> test translations (token lists)
    seconds: float  # wall time of data, model, fit
    decode_seconds: dict  # "greedy" | "beam" -> wall time of translating the test split
    data: Data


def scores(references, hypotheses):
    """{"exact_match": fraction of identical token lists, "bleu": corpus BLEU, "sacrebleu": sacreBLEU's or None}.
    A reference may be a list of token lists (several right answers): exact then means equal to one of them."""
    several = [r if r and all(isinstance(x, list) for x in r) else [r] for r in references]
    exact = float(np.mean([list(h) in refs for refs, h in zip(several, hypotheses)]))
    return {"exact_match": exact, **bleu_scores(references, hypotheses)}  # see keras_rnn_lab.diagnostics.bleu


def train(config, data=None, verbose=0):
    """Fit with teacher forcing and early stopping, then translate the test split greedily and with beams."""
    start = time.perf_counter()
    data, model, history = RECIPE.train_new_model(config, data, verbose=verbose)
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


# --- the command (decoding and serving: recipes/parts/translation_translator.py) -------------------
def main(argv=None):
    """Train once, print exact match and BLEU of greedy and beam search; returns the TrainResult.
    `translate --model M.keras SENTENCE...` translates with a saved model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["translate"]:
        return translate_command(argv[1:])
    if argv[:1] == ["export"]:
        return RECIPE.export_command(argv[1:], serving_endpoints, numeric_endpoints)
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.translation"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, help="encoder reads both ways")
    parser.add_argument("--attention", action=argparse.BooleanOptionalAction, help="Luong attention over the encoder")
    parser.add_argument(
        "--split", choices=sentence_pairs.NUMBER_SPLITS, help="numbers: random or extrapolate (train < 100,000)"
    )
    parser.add_argument("--train-size", dest="train_size", type=positive_int, help="numbers: training pairs")
    parser.add_argument("--test-size", dest="test_size", type=positive_int, help="numbers: test pairs")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tsv", dest="tsv_path", help="source<TAB>target pairs, one a line")
    source.add_argument(
        "--trans-de-en",
        dest="trans_path",
        nargs="?",
        const=sentence_pairs.TRANS_DE_EN,
        help=f"Debian trans-de-en pairs (default path {sentence_pairs.TRANS_DE_EN})",
    )
    source.add_argument("--tfds", dest="tfds_name", help="a prepared TFDS dataset, e.g. ted_hrlr_translate/pt_to_en")
    parser.add_argument("--data-dir", dest="data_dir", help="with --tfds: the TFDS data directory")
    parser.add_argument("--max-pairs", dest="max_pairs", type=positive_int, help="files and TFDS: use only N pairs")
    parser.add_argument("--beam-width", dest="beam_width", type=positive_int, help="beams kept per sentence")
    args = parser.parse_args(argv)
    names = "bidirectional attention split train_size test_size tsv_path trans_path tfds_name data_dir max_pairs"
    names = [*names.split(), "beam_width"]
    with usage_errors(parser):  # bad values and malformed files stop the command before training
        config = config_from_preset(
            Config, PRESETS, args.preset, **{n: getattr(args, n) for n in names}, **common_overrides(args)
        )
        data = load_data(config)
    result = train(config, data, verbose=training.progress_verbosity())
    if args.out is not None:
        RECIPE.save_model(result.model, args.out)
    print(format_report(result))
    return result


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.translation"))
