"""Decoding a trained recurrent model: greedy and beam search in compiled loops
(`search`), the step function that drives them with a trained decoder's own
layers (`stepping`), and character sampling with a temperature (`generation`)."""

from keras_rnn_lab.decoding.search import beam_search, decode, greedy_decode, tokens_to_text
from keras_rnn_lab.decoding.stepping import attention_readout, cell_step

__all__ = ["attention_readout", "beam_search", "cell_step", "decode", "greedy_decode", "tokens_to_text"]
