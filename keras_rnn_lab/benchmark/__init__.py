"""The speed benchmark, `python -m keras_rnn_lab.benchmark` (see `command` for
what it times and how): `candidates` (what runs), `matmuls_only` (the bound),
`timing` (interleaved medians), `report` (the tables), `command` (the CLI)."""

from keras_rnn_lab.benchmark.command import main

__all__ = ["main"]
