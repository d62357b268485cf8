"""Truncated backpropagation through time: a long sequence laid out in windows
that a stateful layer reads in order."""

import numpy as np

from keras_rnn_lab._validation import check_positive_int


def stream_windows(sequence, window, batch_size):
    """A long sequence laid out for truncated BPTT: (inputs, targets), each
    (windows, batch_size, window), where row b of window i continues row b of
    window i - 1.

    The sequence is cut into `batch_size` contiguous streams; window i holds
    the i-th `window` steps of every stream, and the target is the next step.
    A stateful layer fed the windows in order carries each stream's state from
    one window to the next, while each training step's gradient stops at its
    window's start.  The tail that does not fill a window is dropped.
    """
    window, batch_size = check_positive_int("window", window), check_positive_int("batch_size", batch_size)
    sequence = np.asarray(sequence)
    per_stream = (len(sequence) - 1) // batch_size  # steps with a next step to predict
    windows = per_stream // window
    if windows == 0:
        raise ValueError(
            f"A sequence of {len(sequence)} steps is too short for `batch_size`={batch_size} streams of at least "
            f"`window`={window} steps plus a target; expected at least {batch_size * window + 1}."
        )
    used = windows * window
    starts = np.arange(batch_size)[:, None] * per_stream + np.arange(used)[None, :]  # (batch, used)
    inputs, targets = sequence[starts], sequence[starts + 1]

    def by_window(x):  # (batch, windows * window) -> (windows, batch, window)
        return x.reshape(batch_size, windows, window).transpose(1, 0, 2)

    return by_window(inputs), by_window(targets)
