"""The fast sequence layers (drop-ins for keras.layers' SimpleRNN, LSTM and
GRU, their backward pass hand-written in `bptt/`), which loop runs where
(`loop_choice`), and models saved with keras.layers (`swap`)."""

import keras

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
    return layer_class(units, **kwargs)
