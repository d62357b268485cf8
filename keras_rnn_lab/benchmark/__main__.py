"""`python -m keras_rnn_lab.benchmark` (started quietly: `-m` imports keras_rnn_lab first, see its quiet_start)."""

import sys

from keras_rnn_lab.benchmark.command import main
from keras_rnn_lab.training import run_command

sys.exit(run_command(main, "python -m keras_rnn_lab.benchmark"))
