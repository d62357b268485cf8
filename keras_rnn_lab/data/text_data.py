"""Character text, offline: a shipped corpus, a user's file, or a TFDS catalogue.

    text = load_text()                                 # Shakespeare's sonnets (shipped)
    text = load_text(corpus="tiny_shakespeare")        # Tiny Shakespeare (shipped, 1.1M characters)
    text = load_text(text_path="my_corpus.txt")        # a UTF-8 file of your own
    text = load_text(tfds_name="tiny_shakespeare")     # if you have it under data_dir

A shipped corpus goes through a real tensorflow-datasets builder that reads the
file inside this package, prepared into a local data directory (default
`~/.cache/keras_rnn_lab/tensorflow_datasets`, or `$KERAS_RNN_LAB_DATA`); nothing
here ever downloads (`download=False`, no GCS).  TFDS text corpora such as
tiny_shakespeare hold one example per split with the whole text in "text".
"""

import bz2

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_rnn_lab.data import CORPORA
from keras_rnn_lab.data.text_files import read_text
from keras_rnn_lab.data.tfds_local import default_data_dir, load_prepared
from keras_rnn_lab.errors import RunError, UsageError

TEXT_ARGUMENT = "--text or `text_path`"  # char_lm's flag, and load_text's argument


class _ShippedCorpus(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A text corpus shipped in keras_rnn_lab/data/corpora, as one "text" example
    in a "train" split (the layout of TFDS's own text corpora)."""

    VERSION = tfds.core.Version("1.0.0")
    FILE = None  # the file in CORPORA (.txt, or .bz2 compressed)
    DESCRIPTION = None
    CITATION = None

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.DESCRIPTION,
            features=tfds.features.FeaturesDict({"text": tfds.features.Text()}),
            citation=self.CITATION,
        )

    def _split_generators(self, dl_manager):
        del dl_manager  # the file ships with the package: nothing to download
        return {"train": self._generate_examples(CORPORA / self.FILE)}

    def _generate_examples(self, path):
        yield self.name, {"text": read_corpus(path)}


class KerasRnnLabSonnets(_ShippedCorpus):
    """Shakespeare's 154 sonnets (public domain), shipped with keras_rnn_lab."""

    FILE = "sonnets.txt"
    DESCRIPTION = "Shakespeare's sonnets as one plain-text example (public domain)."
    CITATION = "William Shakespeare, Sonnets (1609)."


class KerasRnnLabTinyShakespeare(_ShippedCorpus):
    """Tiny Shakespeare: 40,000 lines of the plays' dialogue, 1,115,394 characters,
    the character-LM benchmark of char-rnn, TFDS's tiny_shakespeare and nanoGPT
    (public-domain text; the file as char-rnn publishes it)."""

    FILE = "tinyshakespeare.txt.bz2"
    DESCRIPTION = "Tiny Shakespeare (Karpathy's char-rnn data) as one plain-text example."
    CITATION = "Andrej Karpathy, char-rnn (2015), data/tinyshakespeare/input.txt."


CORPUS_BUILDERS = {"sonnets": KerasRnnLabSonnets, "tiny_shakespeare": KerasRnnLabTinyShakespeare}
CORPUS_ARGUMENT = "--corpus or `corpus`"


def read_corpus(path):
    """A shipped corpus file's text (.bz2 decompressed): UTF-8, else a RunError
    naming the file (a damaged install, not the user's input)."""
    try:
        data = path.read_bytes()
        if str(path).endswith(".bz2"):
            data = bz2.decompress(data)
        return data.decode("utf-8")
    except (OSError, ValueError, EOFError) as error:  # bz2 raises OSError/EOFError, decode UnicodeDecodeError
        raise RunError(
            f"the corpus file {str(path)!r} shipped with keras_rnn_lab is damaged ({type(error).__name__}: "
            f"{error}); reinstall the package (pip install --force-reinstall keras_rnn_lab)"
        ) from None


def _tfds_text(name, data_dir, split):
    """Concatenated "text" of every example in `split` of a prepared TFDS dataset."""
    dataset = load_prepared(name, split, data_dir, hint="Prepare it there first, or pass a text file.")
    pieces = [example["text"].decode("utf-8") for example in tfds.as_numpy(dataset)]
    return "".join(pieces)


def prepared_corpus(corpus="sonnets", data_dir=None):
    """The builder of a shipped `corpus` (CORPUS_BUILDERS), prepared offline in
    `data_dir` (once; later calls reuse it)."""
    if corpus not in CORPUS_BUILDERS:
        raise UsageError(f"argument {CORPUS_ARGUMENT}: expected one of {sorted(CORPUS_BUILDERS)}; received {corpus!r}")
    builder = CORPUS_BUILDERS[corpus](data_dir=data_dir or default_data_dir())
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(try_download_gcs=False))
    return builder


def load_text(text_path=None, tfds_name=None, data_dir=None, split="train", corpus="sonnets"):
    """The training text: a file, a TFDS catalogue dataset, or a shipped `corpus`
    ("sonnets", the default, or "tiny_shakespeare")."""
    if text_path is not None and tfds_name is not None:
        raise ValueError(f"Pass `text_path` or `tfds_name`, not both; received {text_path!r} and {tfds_name!r}.")
    if text_path is not None:
        text = read_text(text_path, TEXT_ARGUMENT)
        if not text:
            raise UsageError(
                f"argument {TEXT_ARGUMENT}: {str(text_path)!r} is empty; expected a few characters at least"
            )
        source = text_path
    elif tfds_name is not None:
        text = _tfds_text(tfds_name, data_dir or default_data_dir(), split)
        source = tfds_name
    else:
        builder = prepared_corpus(corpus, data_dir)
        text = "".join(e["text"].decode("utf-8") for e in tfds.as_numpy(builder.as_dataset(split=split)))
        source = corpus
    if not text:
        raise ValueError(f"The text from {source!r} is empty; expected at least a few characters.")
    return text


def split_text(text, validation_fraction):
    """(train, validation) as contiguous chunks: the last fraction validates, so
    no window can straddle both."""
    if not 0.0 <= validation_fraction < 1.0:
        raise ValueError(f"Argument `validation_fraction` must be in [0, 1); received {validation_fraction}.")
    cut = len(text) - int(round(len(text) * validation_fraction))
    return text[:cut], text[cut:]


def char_windows(text, window, stride, batch_size, shuffle_seed=None):
    """tf.data of (input chars, next chars), both (batch, window) strings.

    Window i covers text[i*stride : i*stride + window + 1]; the target is the
    input shifted by one character.  Cached after slicing, shuffled per epoch
    when `shuffle_seed` is given, batched (last partial batch kept), prefetched.
    """
    if len(text) < window + 1:
        raise ValueError(
            f"The text ({len(text)} characters) is shorter than one window of `window`={window} plus its target."
        )
    chars = np.array(list(text))
    starts = np.arange(0, len(text) - window, stride)
    pieces = chars[starts[:, None] + np.arange(window + 1)]  # (windows, window + 1)
    dataset = tf.data.Dataset.from_tensor_slices((pieces[:, :-1], pieces[:, 1:])).cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(pieces), seed=shuffle_seed, reshuffle_each_iteration=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def char_vocabulary(text):
    """Sorted distinct characters; the lookup layer adds the out-of-vocabulary entry."""
    return sorted(set(text))
