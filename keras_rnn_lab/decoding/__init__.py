"""Decoding a trained recurrent model: greedy and beam search in compiled loops
(`search`), and character sampling with a temperature (`generation`)."""

from keras_rnn_lab.decoding.search import beam_search, greedy_decode

__all__ = ["beam_search", "greedy_decode"]
