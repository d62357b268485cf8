"""Loading a TFDS catalogue dataset that is already prepared on this machine.

Nothing here downloads: `tfds.load(..., download=False)` fails in under a
second when the data is not there, where the default would retry the network
for minutes.  tensorflow_datasets is imported on the first call only, so a
recipe that never reads TFDS never loads it.
"""

import os

from keras_rnn_lab.errors import UsageError


def default_data_dir():
    """Where prepared datasets live: $KERAS_RNN_LAB_DATA, else
    ~/.cache/keras_rnn_lab/tensorflow_datasets."""
    return os.environ.get(
        "KERAS_RNN_LAB_DATA", os.path.join(os.path.expanduser("~"), ".cache", "keras_rnn_lab", "tensorflow_datasets")
    )


def load_prepared(name, split, data_dir=None, what="", hint="", **load_options):
    """`tfds.load(name, split=split, data_dir=..., download=False, **load_options)`,
    or a ValueError naming the `tfds_name` argument, the split, the directory
    and (`what`) the structure expected, ending with `hint` (what to do instead)."""
    import tensorflow_datasets as tfds

    data_dir = data_dir or default_data_dir()
    try:
        return tfds.load(name, split=split, data_dir=data_dir, download=False, **load_options)
    except Exception as err:  # TFDS raises several types for "not prepared here"
        expected = f" {what}" if what else ""
        reason = (str(err).strip().splitlines() or [""])[0]  # TFDS's first line says it; the rest is advice to download
        raise UsageError(
            f"argument --tfds (`tfds_name`): could not load {name!r} split {split!r}{expected} from {data_dir!r} "
            f"without downloading ({type(err).__name__}: {reason}).{' ' + hint if hint else ''}"
        ) from None


def as_numpy(dataset):
    """`tfds.as_numpy(dataset)`: the examples as NumPy values."""
    import tensorflow_datasets as tfds

    return tfds.as_numpy(dataset)
