"""The speed benchmark, `python -m keras_rnn_lab.benchmark` (see `command` for
what it times and how): `candidates` (what runs), `matmuls_only` (the bound),
`timing` (interleaved rounds), `torch_peer` and `torch_worker` (PyTorch in its
own process, in the same rounds), `report` (the tables and the rounds' ratios),
`command` (the CLI)."""

from keras_rnn_lab.benchmark.command import main

__all__ = ["main"]
