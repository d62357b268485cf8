"""Sentiment analysis: is a movie review snippet fresh or rotten?

The lecture's many-to-one task: the network reads a whole review word by word
and answers once, at the end,

    text -> TextVectorization -> Embedding(mask_zero) -> LSTM | GRU | SimpleRNN -> Dense(2)

and is compared with the one-to-one network that ignores word order, the same
vectorizer and embedding averaged over the words (a bag of words):

    text -> TextVectorization -> Embedding(mask_zero) -> GlobalAveragePooling1D -> Dense(2)

Both models take raw strings: the vectorizer, adapted on the training texts only,
carries its vocabulary inside the saved model.  Padding is id 0 and
`mask_zero=True` masks it, so the recurrent layer carries its state across the
padding unchanged and the average counts real words only.

    python -m recipes.sentiment                       # Rotten Tomatoes snippets, bidirectional LSTM
    python -m recipes.sentiment --cell gru --no-bidirectional
    python -m recipes.sentiment --layers 2 --out sentiment.keras
    python -m recipes.sentiment --csv reviews.csv --text-column review --label-column stars
    python -m recipes.sentiment --tfds imdb_reviews   # if prepared under the TFDS data directory
    python -m recipes.sentiment --preset tiny         # seconds, for a smoke test

The data: 12,808 Rotten Tomatoes snippets shipped with the package (Pang & Lee
2005), split per class 80/10/10 into train, validation and test.  What to
expect (default preset, about 40 s on two CPU cores): about 77% test accuracy
for the bidirectional LSTM and 76% for the word average, a lead within the
noise of the 1,282-snippet test set.
"""

import argparse
import dataclasses
import sys
import time

import keras
import numpy as np
import tensorflow as tf  # tf.data input pipelines

from keras_rnn_lab import training
from keras_rnn_lab.data import labelled_text
from keras_rnn_lab.data.labelled_text import LabelledTexts
from keras_rnn_lab.serving import export, numeric
from keras_rnn_lab.training import regularization
from recipes.parts.sentiment_report import confusion_matrix, format_report

CLASS_NAMES = ("negative", "positive")  # of the shipped snippets: rotten, fresh
SPLITS = ("train", "validation", "test")
# Inference keeps no activations: big batches are cheap and pay the loop overhead less often.
EVALUATION_BATCH_SIZE = 512


@dataclasses.dataclass
class Config(training.TrainingConfig):
    """The shared training fields (TrainingConfig) and this recipe's own."""

    bidirectional: bool = True  # read the review both ways: the end of a snippet sees its start
    layers: int = 1  # stacked recurrent layers
    units: int = 64  # per direction
    embedding_dim: int = 128
    max_tokens: int = 20_000  # vocabulary cap, padding and out-of-vocabulary ids included
    sequence_length: int = 60  # tokens kept per text; the longest snippet has 53 words
    embedding_dropout: float = 0.5  # 10k snippets: the 2.5M embedding weights overfit first
    dropout: float = 0.3  # on each recurrent layer's inputs
    output_dropout: float = 0.5  # before the logits
    batch_size: int = 64
    patience: int = 2  # the LSTM's validation loss is lowest after ~2 epochs
    split_fractions: tuple = (0.8, 0.1, 0.1)  # train, validation, test; per class
    csv_path: str = None  # a CSV of your own, else tfds_name, else the shipped snippets
    text_column: str = "text"
    label_column: str = "label"
    tfds_name: str = None  # a TFDS catalogue dataset with train/test splits and (text, label)
    data_dir: str = None  # TFDS data directory; default: tfds_local.default_data_dir()
    max_examples: int = None  # a seeded random subset of this many (of each TFDS split): quick runs, tests

    def __post_init__(self):
        super().__post_init__()
        for name in ("layers", "embedding_dim", "max_tokens", "sequence_length"):
            training.check_positive_int(name, getattr(self, name))
        if self.max_examples is not None:
            training.check_positive_int("max_examples", self.max_examples)
        for name in ("embedding_dropout", "output_dropout"):
            training.check_rate(name, getattr(self, name))
        self.split_fractions = labelled_text.check_fractions("split_fractions", self.split_fractions, len(SPLITS))
        if self.csv_path is not None and self.tfds_name is not None:
            raise ValueError(
                f"Pass `csv_path` or `tfds_name`, not both; received {self.csv_path!r} and {self.tfds_name!r}."
            )


# Overrides of Config's defaults.  `tiny` is for tests: 2,000 snippets and a
# small model learn in seconds; bidirectional so tests cover the backward masking.
PRESETS = {
    "tiny": dict(
        max_examples=2000,
        max_tokens=2000,
        sequence_length=30,
        embedding_dim=16,
        units=16,
        embedding_dropout=0.1,
        dropout=0.0,
        output_dropout=0.1,
        batch_size=32,
        epochs=4,
        learning_rate=3e-3,
        patience=3,
    ),
    "default": {},
}


# --- data ----------------------------------------------------------------------
@dataclasses.dataclass
class Data:
    """What `load_data` returns: the three splits, the names of labels 0 and 1,
    where they came from and the vocabulary adapted on the training texts."""

    train: LabelledTexts
    validation: LabelledTexts
    test: LabelledTexts
    class_names: tuple
    source: str
    vocabulary: list  # ["", "[UNK]", most frequent training word, ...]


def load_data(config):
    """Train, validation and test splits from the shipped snippets, a CSV or
    TFDS (`keras_rnn_lab.data.labelled_text`), and their vocabulary."""
    if config.tfds_name is not None:
        # The dataset's own test split tests; its train split is cut into train and validation.
        parts, class_names = labelled_text.load_tfds_splits(config.tfds_name, ("train", "test"), config.data_dir)
        train, test = (labelled_text.subsample(p.texts, p.labels, config.max_examples, config.seed) for p in parts)
        train_share = config.split_fractions[0] / (config.split_fractions[0] + config.split_fractions[1])
        splits = labelled_text.split_labelled_texts(*train, (train_share, 1.0 - train_share), config.seed)
        splits.append(LabelledTexts(*test))
        source = config.tfds_name
    else:
        if config.csv_path is not None:
            texts, labels, class_names = labelled_text.read_labelled_csv(
                config.csv_path, config.text_column, config.label_column
            )
            source = config.csv_path
        else:
            (texts, labels), class_names = labelled_text.load_rotten_tomatoes(), CLASS_NAMES
            source = "Rotten Tomatoes snippets (Pang & Lee 2005)"
        texts, labels = labelled_text.subsample(texts, labels, config.max_examples, config.seed)
        splits = labelled_text.split_labelled_texts(texts, labels, config.split_fractions, config.seed)
    for name, split in zip(SPLITS, splits):
        if len(split) == 0:
            raise ValueError(f"The {name} split of {source!r} is empty; expected enough examples for every split.")
    return Data(*splits, class_names=class_names, source=source, vocabulary=make_vocabulary(config, splits[0].texts))


def make_vocabulary(config, texts):
    """The vectorizer's vocabulary adapted on `texts`: pass the training texts only,
    so that validation and test words are as unseen as a user's will be."""
    vectorizer = keras.layers.TextVectorization(max_tokens=config.max_tokens)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(np.asarray(texts, dtype=object)).batch(1024))
    return [str(token) for token in vectorizer.get_vocabulary()]  # ["", "[UNK]", most frequent, ...]


# --- models --------------------------------------------------------------------
def build_model(config, data, baseline=False):
    """Raw strings (batch,) -> logits (batch, 2), compiled.

    `data`: what `load_data` returned, or just a vocabulary (`make_vocabulary`'s
    list of tokens).  The model is `vectorizer` (strings -> ids (batch,
    sequence_length), 0 = padding) followed by `classifier`, a model of the ids
    alone: the recurrent network, or with `baseline=True` the word-embedding average.
    """
    vocabulary = data.vocabulary if isinstance(data, Data) else list(data)
    strings = keras.Input(shape=(), dtype="string", name="text")  # (batch,)
    vectorizer = keras.layers.TextVectorization(
        max_tokens=config.max_tokens,
        output_sequence_length=config.sequence_length,
        vocabulary=vocabulary,
        name="vectorizer",
    )
    classifier = (
        _average_classifier(config, len(vocabulary)) if baseline else _recurrent_classifier(config, len(vocabulary))
    )
    model = keras.Model(
        strings, classifier(vectorizer(strings)), name=classifier.name.replace("classifier", "sentiment")
    )
    return training.compile_for_classes(model, training.make_optimizer(config))


def _embedded_ids(config, vocabulary_size):
    """Ids (batch, time) -> masked embeddings (batch, time, embedding_dim)."""
    return [
        keras.Input((None,), dtype="int64", name="ids"),
        keras.layers.Embedding(vocabulary_size, config.embedding_dim, mask_zero=True, name="embedding"),
        # SpatialDropout1D drops the same embedding dimensions at every step of a
        # text, so a dropped feature cannot be read off the neighbouring words; it
        # passes the mask on.
        keras.layers.SpatialDropout1D(config.embedding_dropout, seed=config.seed, name="embedding_dropout"),
    ]


def _recurrent_classifier(config, vocabulary_size):
    """Ids (batch, time) -> the recurrent layer(s) read every word -> logits (batch, 2) from the last state."""
    layers = _embedded_ids(config, vocabulary_size)
    for i in range(config.layers):
        last = i == config.layers - 1
        layer = training.recurrent_layer(
            config.cell,
            config.units,
            builtin=config.builtin,
            return_sequences=not last,  # (batch, time, units) into the next layer; the last gives (batch, units)
            name=f"{config.cell}_{i + 1}",
            **{**regularization.layer_regularisation(config), "seed": config.seed + i},  # own masks per layer
        )
        if config.bidirectional:
            layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{config.cell}_{i + 1}")
        layers.append(layer)
    direction = "bi" if config.bidirectional else ""
    layers += [
        keras.layers.Dropout(config.output_dropout, seed=config.seed, name="output_dropout"),
        keras.layers.Dense(2, name="logits"),
    ]
    return keras.Sequential(layers, name=f"{direction}{config.cell}_classifier")


def _average_classifier(config, vocabulary_size):
    """Ids (batch, time) -> the mean of the word embeddings -> logits (batch, 2): word order ignored."""
    layers = _embedded_ids(config, vocabulary_size) + [
        keras.layers.GlobalAveragePooling1D(name="average"),  # mean over unmasked words: (batch, embedding_dim)
        keras.layers.Dropout(config.output_dropout, seed=config.seed, name="output_dropout"),
        keras.layers.Dense(2, name="logits"),
    ]
    return keras.Sequential(layers, name="average_classifier")


# --- training ------------------------------------------------------------------
def fit_arguments(config, model, data):
    """`model.fit` on the training split, reshuffled every epoch (seeded),
    validated on the validation split (early stopping)."""
    return {
        "x": _dataset(data.train, config.batch_size, shuffle_seed=config.seed),
        "validation_data": _dataset(data.validation, EVALUATION_BATCH_SIZE),
        "shuffle": False,  # the training dataset reshuffles itself every epoch; Keras would only warn
    }


def _dataset(split, batch_size, shuffle_seed=None):
    """tf.data of (texts (batch,) strings, labels (batch,)), reshuffled every epoch if seeded."""
    dataset = tf.data.Dataset.from_tensor_slices((split.texts, split.labels))
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(split), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


RECIPE = training.Recipe.of(
    __name__,
    count_examples=lambda data: len(data.train),
    example_unit="texts",
    legacy_model_names=r"\w+_sentiment",  # bilstm_sentiment, average_sentiment, ...: how files were told apart
)


@dataclasses.dataclass
class ModelResult:
    """One trained model, its Keras history and its test metrics."""

    model: keras.Model
    history: dict  # keras History.history: per-epoch "loss", "accuracy", "val_loss", "val_accuracy"
    accuracy: float  # on the test split
    confusion: np.ndarray  # (2, 2) counts: rows = true label, columns = predicted
    seconds: float  # wall time of fit and evaluation


@dataclasses.dataclass
class TrainResult:
    """What `train` returns: the recurrent model and the bag-of-words baseline."""

    config: Config
    data: Data
    recurrent: ModelResult
    baseline: ModelResult


def train(config, verbose=2):
    """Load the splits and their vocabulary, then fit and test both models
    (each stops when its validation loss stops improving, best weights kept)."""
    data = load_data(config)
    results = {}
    for name, baseline in (("recurrent", False), ("baseline", True)):
        keras.utils.set_random_seed(config.seed)  # each model starts from the same state, in any order
        start = time.perf_counter()
        model = build_model(config, data, baseline=baseline)
        history = RECIPE.fit(config, data, model, verbose=verbose)
        accuracy, confusion = evaluate(model, data.test)
        results[name] = ModelResult(model, history.history, accuracy, confusion, time.perf_counter() - start)
    return TrainResult(config, data, results["recurrent"], results["baseline"])


# --- evaluation ----------------------------------------------------------------
def predict_labels(model, texts):
    """The label with the larger logit for each text, (n,) int."""
    logits = model.predict(np.asarray(texts, dtype=object), batch_size=EVALUATION_BATCH_SIZE, verbose=0)
    return np.argmax(logits, axis=-1)


def evaluate(model, split):
    """(accuracy, confusion matrix) of `model` on `split`."""
    predictions = predict_labels(model, split.texts)
    return float(np.mean(predictions == split.labels)), confusion_matrix(split.labels, predictions)


# --- command line --------------------------------------------------------------
def serving_endpoints(model, class_names=CLASS_NAMES):
    """SavedModel signatures (`keras_rnn_lab.serving.export`).  "classify": text
    (batch,) raw strings -> probabilities (batch, 2), label_id and label (one
    of `class_names`); the vectorizer and its vocabulary are inside the graph."""
    text = tf.TensorSpec((None,), tf.string, name="text")
    postprocess = export.classifier_outputs(class_names)
    return {"classify": export.Endpoint(lambda text: postprocess(model(text, training=False)), [text])}


def numeric_endpoints(model, class_names=CLASS_NAMES):
    """The TFLite and ONNX twin (`keras_rnn_lab.serving.numeric`).  "classify_ids":
    ids (batch, time) int64 as the vectorizer makes them (vocabulary.json: id ->
    word, 0 padding, 1 [UNK]; tokenizer.json: lower-case, strip punctuation,
    split on whitespace, pad or cut to sequence_length) -> probabilities and label_id."""
    classifier = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    ids = tf.TensorSpec((None, None), tf.int64, name="ids")
    postprocess = export.classifier_outputs(class_names)
    assets = {**postprocess.assets, **numeric.vectorizer_assets(model.get_layer("vectorizer"))}
    return {"classify_ids": export.Endpoint(lambda ids: postprocess(classifier(ids, training=False)), [ids], assets)}


def main(argv=None):
    """Train both models, print their test results; returns the TrainResult.
    `export --model M.keras --out DIR` exports a trained model instead."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["export"]:
        return RECIPE.export_command(argv[1:], serving_endpoints, numeric_endpoints)
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.sentiment"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    training.add_common_arguments(parser, PRESETS)
    parser.add_argument(
        "--bidirectional", action=argparse.BooleanOptionalAction, help="read both ways (default: the preset's)"
    )
    parser.add_argument("--layers", type=training.positive_int, help="stacked recurrent layers")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--csv", dest="csv_path", help="a CSV of your own with a header row")
    source.add_argument("--tfds", dest="tfds_name", help="a TFDS dataset prepared locally, e.g. imdb_reviews")
    parser.add_argument("--text-column", dest="text_column", help="with --csv: the text column (default: text)")
    parser.add_argument("--label-column", dest="label_column", help="with --csv: the label column (default: label)")
    parser.add_argument("--data-dir", dest="data_dir", help="with --tfds: the TFDS data directory")
    args = parser.parse_args(argv)
    if args.csv_path is None and (args.text_column or args.label_column):
        parser.error("arguments --text-column/--label-column: only with --csv")
    if args.tfds_name is None and args.data_dir:
        parser.error("argument --data-dir: only with --tfds")
    with training.usage_errors(parser):  # a bad value or unknown --set key stops the command here (exit 2)
        config = RECIPE.config(
            args.preset,
            bidirectional=args.bidirectional,
            layers=args.layers,
            csv_path=args.csv_path,
            tfds_name=args.tfds_name,
            text_column=args.text_column,
            label_column=args.label_column,
            data_dir=args.data_dir,
            **training.common_overrides(args),  # and settings=, the --set values
        )
    result = train(config, verbose=training.progress_verbosity())
    print()
    print(format_report(result), flush=True)
    if args.out is not None:
        RECIPE.save_model(result.recurrent.model, args.out)
        print(f"saved the recurrent model to {args.out}")
    return result


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.sentiment"))
