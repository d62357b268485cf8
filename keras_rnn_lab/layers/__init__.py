"""The fast sequence layers (drop-ins for keras.layers' SimpleRNN, LSTM and
GRU, their backward pass hand-written in `bptt/`), which loop runs where
(`loop_choice`), and models saved with keras.layers (`swap`)."""

import keras

from keras_rnn_lab._validation import check_rate
from keras_rnn_lab.layers.gru import GRU
from keras_rnn_lab.layers.lstm import LSTM
from keras_rnn_lab.layers.simple_rnn import SimpleRNN

RECURRENT_LAYERS = {"lstm": LSTM, "gru": GRU, "simple_rnn": SimpleRNN}


def recurrent_layer(cell, units, builtin=False, **kwargs):
    """Our fast layer for `cell` ("lstm", "gru" or "simple_rnn"), or with
    `builtin=True` Keras's layer of the same name (for side-by-side runs)."""
    if cell not in RECURRENT_LAYERS:
        raise ValueError(f"Argument `cell` must be one of {sorted(RECURRENT_LAYERS)}; received {cell!r}.")
    layer_class = RECURRENT_LAYERS[cell]
    if builtin:
        layer_class = getattr(keras.layers, layer_class.__name__)
        # Keras's layers have no weight drop: 0 (a Config's default) is left out, anything else refused.
        rate = check_rate("recurrent_kernel_dropout", kwargs.pop("recurrent_kernel_dropout", 0.0))
        if rate:
            raise ValueError(
                f"Argument `recurrent_kernel_dropout` must be 0 with builtin=True (keras.layers."
                f"{layer_class.__name__} has no weight drop); received {rate}."
            )
    return layer_class(units, **kwargs)
