"""`python -m keras_rnn_lab.benchmark`."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from keras_rnn_lab.benchmark.command import main  # noqa: E402
from keras_rnn_lab.training import run_command  # noqa: E402

sys.exit(run_command(main, "python -m keras_rnn_lab.benchmark"))
