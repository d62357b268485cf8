"""The lecture's cells, one time step each, written from its equations
(`cell_base` holds what the three share, `dropout_masks` the masks they draw)."""

from keras_rnn_lab.cells.gru_cell import GRUCell, convert_gru_update_convention
from keras_rnn_lab.cells.lstm_cell import LSTMCell
from keras_rnn_lab.cells.simple_rnn_cell import SimpleRNNCell

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "convert_gru_update_convention"]
