"""The lecture's L1/L2 regularisation of a recurrent layer, from a recipe's Config.

A Config that can be regularised has the four PENALTY_FIELDS (0 = no penalty):
kernel_l1 and kernel_l2 on U (the input kernel), recurrent_l1 and
recurrent_l2 on W (the recurrent kernel).  The loss gains
l1 * sum|w| + l2 * sum w^2 for each penalised matrix.
"""

import dataclasses

import keras

PENALTY_FIELDS = ("kernel_l1", "kernel_l2", "recurrent_l1", "recurrent_l2")


@dataclasses.dataclass
class Regularisation:
    """The regularisation fields every training recipe's Config shares (and
    tuning/ searches): a recipe's Config subclasses this; a recipe with another
    default redeclares that field (char_lm's dropout 0.2)."""

    dropout: float = 0.0  # on the recurrent layer's inputs (searched by tuning/)
    recurrent_dropout: float = 0.0  # on h_{t-1}
    recurrent_kernel_dropout: float = 0.0  # weight drop on W (AWD-LSTM); 0: off, as before it existed
    kernel_l1: float = 0.0  # L1/L2 penalties on U (kernel) and W (recurrent kernel); searched by tuning/
    kernel_l2: float = 0.0
    recurrent_l1: float = 0.0
    recurrent_l2: float = 0.0


def check_penalties(config):
    """Each of a Config's PENALTY_FIELDS is a number >= 0."""
    for name in PENALTY_FIELDS:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"Argument `{name}` must be a number >= 0; received {value!r}.")


def weight_penalties(config):
    """Recurrent-layer keyword arguments: `kernel_regularizer` on U from
    config.kernel_l1/kernel_l2 and `recurrent_regularizer` on W from
    config.recurrent_l1/recurrent_l2.  Zero penalties give no regularizer at
    all: no extra loss term, no extra ops."""
    check_penalties(config)
    penalties = {}
    for weight, argument in (("kernel", "kernel_regularizer"), ("recurrent", "recurrent_regularizer")):
        l1, l2 = getattr(config, f"{weight}_l1"), getattr(config, f"{weight}_l2")
        if l1 or l2:
            penalties[argument] = keras.regularizers.L1L2(l1=l1, l2=l2)
    return penalties


def layer_regularisation(config):
    """Every regularising keyword argument of a recipe's recurrent layer from
    its Config: dropout on x_t, recurrent dropout on h_{t-1}, weight drop on W
    (masks seeded by config.seed) and the L1/L2 penalties (`weight_penalties`).
    A Config without `recurrent_kernel_dropout` has no weight drop."""
    return dict(
        dropout=config.dropout,
        recurrent_dropout=config.recurrent_dropout,
        recurrent_kernel_dropout=getattr(config, "recurrent_kernel_dropout", 0.0),
        seed=config.seed,
        **weight_penalties(config),
    )
