"""keras_rnn_lab: the lecture's recurrent networks as tested Keras 3 layers.

Cells (one time step, run them with `keras.layers.RNN`):
    SimpleRNNCell, LSTMCell, GRUCell
Fast sequence layers (drop-ins for the Keras layers of the same names):
    SimpleRNN, LSTM, GRU
Models built or saved with keras.layers:
    load_model(path) (.keras or Keras 2 .h5), swap_builtin_layers(model), drop_in_objects()
"""

from keras_rnn_lab.gru import GRU
from keras_rnn_lab.gru_cell import GRUCell, convert_gru_update_convention
from keras_rnn_lab.lstm import LSTM
from keras_rnn_lab.lstm_cell import LSTMCell
from keras_rnn_lab.simple_rnn import SimpleRNN
from keras_rnn_lab.simple_rnn_cell import SimpleRNNCell
from keras_rnn_lab.swap import drop_in_objects, load_model, swap_builtin_layers

__version__ = "0.1.0"

__all__ = [
    "SimpleRNNCell",
    "LSTMCell",
    "GRUCell",
    "convert_gru_update_convention",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "drop_in_objects",
    "load_model",
    "swap_builtin_layers",
]
