"""Training: what every recipe shares.

config          TrainingConfig (the shared fields, checked once), config_from_preset
recipe          Recipe, the one contract between a recipe and its consumers; find(name)
command_line    the common flags, argparse types, usage errors, run_command (every entry point),
                progress_verbosity (the bar on a terminal, a line per epoch otherwise)
model_files     .keras files that record their recipe, saved atomically, checked on load
callbacks       stop_early, StopAt, TimeBudget, ResetStates
optimizers      make_optimizer (with clipping), compile_for_classes
initializers    the lecture's initialisation, ForgetGateBias
regularization  dropout and L1/L2 fields of a Config
windows         truncated-BPTT windows
runs            run directories: config, checkpoints, logs, resume
summaries       text and images beside a run's TensorBoard curves (imported by name: TensorFlow)
distributed     the tf.distribute custom step
"""

from keras_rnn_lab._validation import check_number, check_positive_int, check_rate, check_split_fractions
from keras_rnn_lab.layers import RECURRENT_LAYERS, recurrent_layer
from keras_rnn_lab.training.callbacks import ResetStates, StopAt, TimeBudget, recurrent_layers, stop_early
from keras_rnn_lab.training.command_line import (
    add_common_arguments,
    comma_list,
    common_overrides,
    keras_path,
    positive_float,
    positive_int,
    program,
    progress_verbosity,
    run_command,
    seed,
    setting,
    typed_as,
    usage_errors,
)
from keras_rnn_lab.training.config import TRAINING_FIELDS, TrainingConfig, check_seed, config_from_preset
from keras_rnn_lab.training.initializers import (
    INITIALISATIONS,
    LECTURE_STDDEV,
    ForgetGateBias,
    initialisation,
)
from keras_rnn_lab.training.optimizers import (
    OPTIMIZERS,
    check_clip,
    check_clipping,
    compile_for_classes,
    make_optimizer,
)
from keras_rnn_lab.training.recipe import Recipe, fit_checked
from keras_rnn_lab.training.windows import stream_windows

__all__ = [
    "check_number",
    "check_positive_int",
    "check_rate",
    "check_split_fractions",
    "RECURRENT_LAYERS",
    "recurrent_layer",
    "ResetStates",
    "StopAt",
    "TimeBudget",
    "recurrent_layers",
    "stop_early",
    "add_common_arguments",
    "comma_list",
    "common_overrides",
    "keras_path",
    "positive_float",
    "positive_int",
    "program",
    "progress_verbosity",
    "run_command",
    "seed",
    "setting",
    "typed_as",
    "usage_errors",
    "TRAINING_FIELDS",
    "TrainingConfig",
    "check_seed",
    "config_from_preset",
    "INITIALISATIONS",
    "LECTURE_STDDEV",
    "ForgetGateBias",
    "initialisation",
    "OPTIMIZERS",
    "check_clip",
    "check_clipping",
    "compile_for_classes",
    "make_optimizer",
    "Recipe",
    "fit_checked",
    "stream_windows",
]
