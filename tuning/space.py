"""The lecture's tuning guidance as keras-tuner search-space pieces.

Every recipe's space is built from these, so the guidance holds everywhere:
  * the learning rate is the single most important hyperparameter: every space
    searches it, on a log scale (1e-4 and 1e-2 are as far apart as 1e-3 and 1e-1);
  * larger networks are more powerful and overfit more easily: units and layers;
  * regularise: L1 and L2 on the kernels (U) and recurrent kernels (W), on a log
    scale with zero included (no penalty is a candidate too), dropout on the
    inputs, recurrent dropout on h_{t-1} and weight drop on W;
  * epochs are not searched: the recipe's own early stopping ends each trial.

Each function registers its hyperparameters on `hp` and returns Config overrides;
`default` is the recipe's own value, so default HyperParameters rebuild the recipe.
"""

# Zero, then decades: a penalty of 1e-6 and one of 1e-3 are equally worth trying.
PENALTIES = (0.0, 1e-6, 1e-5, 1e-4, 1e-3)


def learning_rate(hp, default, low=1e-4, high=3e-2):
    """Adam's learning rate, log-uniform in [low, high] (widened to hold `default`)."""
    low, high = min(low, default), max(high, default)
    return {"learning_rate": hp.Float("learning_rate", low, high, sampling="log", default=default)}


def _with_default(choices, default):
    """The choices in order, with the recipe's (or preset's) own value among them."""
    return sorted(set(choices) | {default})


def recurrent_size(hp, units, default_units, layers=None, default_layers=1, cells=None, default_cell="lstm"):
    """Units per recurrent layer from `units`, optionally the number of stacked
    layers (1..`layers`) and the cell type from `cells`."""
    overrides = {"units": hp.Choice("units", _with_default(units, default_units), default=default_units)}
    if layers is not None:
        overrides["layers"] = hp.Int("layers", 1, max(layers, default_layers), default=default_layers)
    if cells is not None:
        overrides["cell"] = hp.Choice("cell", _with_default(cells, default_cell), default=default_cell)
    return overrides


def penalties(hp):
    """L1 and L2 on the recurrent layers' kernels and recurrent kernels."""
    return {
        name: hp.Choice(name, list(PENALTIES), default=0.0)
        for name in ("kernel_l1", "kernel_l2", "recurrent_l1", "recurrent_l2")
    }


def dropouts(hp, default=0.0, default_recurrent=0.0, default_kernel=0.0, high=0.5):
    """Dropout on the recurrent layers' inputs, on h_{t-1} and on the weights of W
    (weight drop, `recurrent_kernel_dropout`), in steps of 0.1."""
    high = max(high, default, default_recurrent, default_kernel)
    return {
        "dropout": hp.Float("dropout", 0.0, high, step=0.1, default=default),
        "recurrent_dropout": hp.Float("recurrent_dropout", 0.0, high, step=0.1, default=default_recurrent),
        "recurrent_kernel_dropout": hp.Float("recurrent_kernel_dropout", 0.0, high, step=0.1, default=default_kernel),
    }


def batch_size(hp, choices, default):
    """The batch size, used by the hypermodel's `fit` (not a Config of the model)."""
    return {"batch_size": hp.Choice("batch_size", _with_default(choices, default), default=default)}
