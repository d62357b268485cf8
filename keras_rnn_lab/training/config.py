"""A recipe's Config: the fields every training recipe shares, checked once,
and a Config built from a named preset, `--set` settings and flags."""

import dataclasses

from keras_rnn_lab._validation import check_positive_int, check_rate, check_seed
from keras_rnn_lab.layers import RECURRENT_LAYERS
from keras_rnn_lab.training import runs
from keras_rnn_lab.training.optimizers import check_clipping, check_learning_rate
from keras_rnn_lab.training.regularization import Regularisation, check_penalties

# The training fields of TrainingConfig, in the order the command line lists them.
TRAINING_FIELDS = (
    "cell",
    "units",
    "builtin",
    "epochs",
    "batch_size",
    "learning_rate",
    "clipnorm",
    "clipvalue",
    "patience",
    "seed",
)


@dataclasses.dataclass
class TrainingConfig(Regularisation):
    """What every training recipe's Config holds: the recurrent layer (cell,
    units, ours or Keras's built-in), the fit (epochs, batch size, Adam's
    learning rate, gradient clipping, early-stopping patience, seed) and the
    regularisation fields of `Regularisation`.  A recipe's Config subclasses it,
    adds its own fields and redeclares the defaults it changes; its own
    `__post_init__` calls this one first."""

    cell: str = "lstm"  # "lstm", "gru" or "simple_rnn"
    units: int = 32  # recurrent units
    builtin: bool = False  # True: keras.layers' layer of the same name, for comparisons
    epochs: int = 10  # an upper bound: early stopping usually ends training sooner
    batch_size: int = 32
    learning_rate: float = 1e-3  # Adam's (or the recipe's optimizer's) step size
    clipnorm: float = None  # gradient clipping, see training.optimizers.make_optimizer; None: off
    clipvalue: float = None
    patience: int = 3  # epochs without a better validation score before training stops
    seed: int = 0  # weights, data order, dropout masks and sampling

    def __post_init__(self):
        if self.cell not in RECURRENT_LAYERS:
            raise ValueError(f"Argument `cell` must be one of {sorted(RECURRENT_LAYERS)}; received {self.cell!r}.")
        for name in ("units", "epochs", "batch_size", "patience"):
            check_positive_int(name, getattr(self, name))
        if not isinstance(self.builtin, bool):
            raise TypeError(f"Argument `builtin` must be True or False; received {self.builtin!r}.")
        check_seed(self.seed)
        self.learning_rate = check_learning_rate(self.learning_rate)
        self.clipnorm, self.clipvalue = check_clipping(self.clipnorm, self.clipvalue)  # floats, or None
        for name in ("dropout", "recurrent_dropout", "recurrent_kernel_dropout"):
            check_rate(name, getattr(self, name))
        if self.builtin and self.recurrent_kernel_dropout:  # said now, not when the model is built
            raise ValueError(
                "Argument `recurrent_kernel_dropout` must be 0 with builtin=True (keras.layers' layers have no "
                f"weight drop); received {self.recurrent_kernel_dropout}."
            )
        check_penalties(self)


def config_from_preset(config_class, presets, preset, settings=None, **overrides):
    """`config_class` with `presets[preset]` applied, then `settings` (a dict of
    any fields, from `--set key=value`), then the non-None `overrides` (flags)."""
    if preset not in presets:
        raise ValueError(f"Argument `preset` must be one of {sorted(presets)}; received {preset!r}.")
    fields = {f.name for f in dataclasses.fields(config_class)}
    flags = {k: v for k, v in overrides.items() if v is not None}
    values = {**presets[preset], **(settings or {}), **flags}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"Unknown {config_class.__name__} fields {unknown}; expected some of {sorted(fields)}.")
    config = config_class(**values)
    runs.record_config(config)  # into the active run directory's config.json, if any
    return config
