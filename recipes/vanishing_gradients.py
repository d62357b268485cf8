"""The lecture's vanishing-gradient demo: an error at step 128 only, propagated back.

Every weight of the recurrent layer is drawn from a normal distribution of
scale 0.1 (the lecture's initialisation), the inputs are random, and the loss
is the sum of the hidden state at the last of 128 steps.  `gradient_probe`
gives dL/dh_k for every earlier step k in one tape pass, and the product of the
step Jacobians ds_128/ds_k.  The recipe

  * prints, per cell, the ratio of ||dL/dh|| at distance 127 (the first step)
    to that at distance 0 (the last), and the same for the inputs x;
  * sweeps the LSTM's forget-gate bias b (f_t = sigma(... + b)): the LSTM
    "will also vanish, but much slower than RNN", and a forget gate trained
    around 1 keeps the error alive, since dC_t/dC_{t-1} = f_t;
  * writes a heat map, |dL/dh_k| per time step and hidden unit (one panel per
    cell, log colour scale), and a log-scale plot of ||dL/dh_k|| against the
    distance 128 - k (cells, then the forget-bias sweep).

    python -m recipes.vanishing_gradients                       # ~10 s on 2 cores
    python -m recipes.vanishing_gradients --forget-biases 0,1,2,3,4,5,6 --heatmap h.png --curves c.png
    python -m recipes.vanishing_gradients --builtin             # Keras's layers: the same numbers

What to expect (32 units, 8 random N(0, 1) input features, 16 sequences,
seed 0; distance 127 over distance 0): the SimpleRNN's ratio is about 5e-36,
the GRU's 1e-26 and the LSTM's (forget bias 1, Keras's default) 4e-11 for
dL/dh and 2e-10 for dL/dx, some 1e25 times the SimpleRNN's.  The sweep: b = 0
gives 1e-27, b = 2 gives 5e-3 for dL/dh and 3e-2 for dL/dx, b = 3 gives 0.4,
and from b = 4 on the ratio exceeds 1: with f_t near 1 the memory C grows,
and the loop C -> h -> gates -> C adds to f_t, so the product of Jacobians can
grow instead of shrink (the other side of the lecture's story: exploding).
Seeds 1-4 give the same orders of magnitude, except near b = 2, where
dL/dh's ratio ranged 2.7e-3 to 0.12 over seeds 0-4 (median 1.0e-2) and dL/dx's
2.6e-2 to 0.5.  The last block of the output checks the lecture's claims (the
acceptance's numbers) on the run, for both gradients: on seed 0 all hold for
the input gradient dL/dx, and for dL/dh all but b = 2 (4.9e-3 < 1e-2).  `--init keras`
(orthogonal recurrent kernel) starts the SimpleRNN at 4e-18 instead of 5e-36.
"""

import argparse
import dataclasses
import sys

import keras
import numpy as np

from keras_rnn_lab import training
from keras_rnn_lab.diagnostics.gradient_probe import probe_gradients
from keras_rnn_lab.training import (
    INITIALISATIONS,
    RECURRENT_LAYERS,
    add_common_arguments,
    check_positive_int,
    comma_list,
    common_overrides,
    config_from_preset,
    initialisation,
    recurrent_layer,
    summaries,
    usage_errors,
)

# Flags of add_common_arguments that only mean something for training.
TRAINING_FLAGS = ("epochs", "learning_rate", "clipnorm", "clipvalue", "out")


@dataclasses.dataclass
class Config:
    cells: tuple = ("simple_rnn", "lstm", "gru")
    steps: int = 128  # the lecture's demo: the error at step 128 only
    units: int = 32
    features: int = 8  # random N(0, 1) inputs
    batch_size: int = 16  # sequences whose gradients are pooled into each norm
    init: str = "lecture"  # "lecture": every weight from N(0, 0.1); "keras": Keras's defaults
    forget_biases: tuple = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)  # the LSTM sweep
    builtin: bool = False  # True: keras.layers' layers (the probe steps their cells the same way)
    seed: int = 0

    def __post_init__(self):
        self.cells = tuple(self.cells)
        wrong = [c for c in self.cells if c not in RECURRENT_LAYERS]
        if not self.cells or wrong:
            raise ValueError(f"Argument `cells` must be some of {sorted(RECURRENT_LAYERS)}; received {self.cells!r}.")
        if self.init not in INITIALISATIONS:
            raise ValueError(f"Argument `init` must be one of {INITIALISATIONS}; received {self.init!r}.")
        for name in ("steps", "units", "features", "batch_size"):
            check_positive_int(name, getattr(self, name))
        if self.steps < 2:
            raise ValueError(f"Argument `steps` must be >= 2 (a distance to compare); received {self.steps}.")
        self.forget_biases = tuple(float(b) for b in self.forget_biases)


PRESETS = {
    "tiny": dict(steps=32, units=8, features=4, batch_size=4, forget_biases=(1.0, 3.0)),
    "default": {},
}


@dataclasses.dataclass
class Measurement:
    """One layer's probe: norms per step k (index 0 = the first step)."""

    name: str
    state_norms: np.ndarray  # (T,) ||dL/dh_k||
    input_norms: np.ndarray  # (T,) ||dL/dx_k||
    jacobian_norms: np.ndarray  # (T,) ||ds_T/ds_k||_2, mean over the sequences
    heat: np.ndarray  # (T, units) |dL/dh_k| per unit, mean over the sequences
    forget_bias: float = None  # the LSTM sweep's b; None for the cells' own defaults

    def ratio(self, norms=None):
        norms = self.state_norms if norms is None else norms
        return float(norms[0] / norms[-1])


# The lecture's claims as the acceptance states them: (text, test on the ratios).
GRADIENTS = {"dL/dx": lambda m: m.ratio(m.input_norms), "dL/dh": lambda m: m.ratio()}


@dataclasses.dataclass
class Claim:
    text: str
    gradient: str  # a key of GRADIENTS
    value: float
    holds: bool


def lecture_claims(cells, sweep):
    """The lecture's claims checked on this run, for the input and the state gradient:
    the SimpleRNN's ratio is below 1e-6; the LSTM's with b = 1 is at least 1e6
    times the SimpleRNN's; with b >= 2 it stays above 1e-2."""
    named = {m.name: m for m in cells}
    lstm_b1 = next((m for m in sweep if m.forget_bias == 1.0), named.get("lstm"))
    claims = []
    for gradient, ratio in GRADIENTS.items():
        if "simple_rnn" in named:
            rnn = ratio(named["simple_rnn"])
            claims.append(Claim("SimpleRNN: ratio below 1e-6", gradient, rnn, rnn < 1e-6))
            if lstm_b1 is not None:
                times = ratio(lstm_b1) / rnn
                claims.append(Claim("LSTM b=1: ratio >= 1e6 x SimpleRNN's", gradient, times, times >= 1e6))
        for m in sweep:
            if m.forget_bias >= 2:
                claims.append(Claim(f"{m.name}: ratio above 1e-2", gradient, ratio(m), ratio(m) > 1e-2))
    return claims


def format_claims(claims):
    lines = ["the lecture's claims on this run (value: the ratio, or the LSTM/SimpleRNN factor)"]
    lines += [
        f"  {c.gradient}  {c.text:<40} {c.value:>10.3e}  {'holds' if c.holds else 'DOES NOT HOLD'}" for c in claims
    ]
    return "\n".join(lines)


def load_data(config):
    """Random inputs (batch, steps, features) from N(0, 1), fixed by the seed."""
    rng = np.random.default_rng(config.seed)
    return rng.normal(size=(config.batch_size, config.steps, config.features)).astype("float32")


def build_model(config, cell, forget_bias=None):
    """The recurrent layer alone, built, weights drawn per `config.init`."""
    keras.utils.set_random_seed(config.seed)
    layer = recurrent_layer(
        cell, config.units, builtin=config.builtin, **initialisation(cell, config.init, forget_bias)
    )
    layer.build((None, None, config.features))
    return layer


def measure(config, cell, inputs, forget_bias=None):
    probe = probe_gradients(build_model(config, cell, forget_bias), inputs)
    name = cell if forget_bias is None else f"lstm b={forget_bias:g}"
    heat = np.abs(probe.state_gradients["h"]).mean(axis=0)
    return Measurement(name, probe.state_norms("h"), probe.input_norms(), probe.jacobian_norms, heat, forget_bias)


def train(config):
    """No training here: the probe of every cell, then the forget-bias sweep.
    Returns (cells, sweep), lists of Measurement."""
    inputs = load_data(config)
    cells = [measure(config, cell, inputs) for cell in config.cells]
    sweep = [measure(config, "lstm", inputs, b) for b in config.forget_biases]
    return cells, sweep


def format_table(config, measurements, title):
    distance = config.steps - 1
    header = (
        f"{title:<14} {'dL/dh ratio':>12} {'dL/dx ratio':>12} {'||ds_T/ds_k||':>14}   "
        f"(distance {distance} / distance 0)"
    )
    lines = [header, "-" * len(header)]
    for m in measurements:
        lines.append(f"{m.name:<14} {m.ratio():>12.3e} {m.ratio(m.input_norms):>12.3e} {m.jacobian_norms[0]:>14.3e}")
    return "\n".join(lines)


def plot_heatmap(measurements, path):
    """|dL/dh_k| per time step (x) and hidden unit (y), log colour scale, one panel per cell."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    figure, axes = plt.subplots(len(measurements), 1, figsize=(10, 2.6 * len(measurements)), squeeze=False)
    floor = 1e-40  # log scale: exact zeros (none expected) drawn at the floor
    for axis, m in zip(axes[:, 0], measurements):
        image = axis.imshow(
            np.maximum(m.heat.T, floor),
            aspect="auto",
            cmap="viridis",
            norm=LogNorm(vmin=max(m.heat.min(), floor), vmax=m.heat.max()),
        )
        axis.set(
            title=f"{m.name}: |dL/dh_k|, error at step {m.heat.shape[0]} only",
            xlabel="time step k",
            ylabel="hidden unit",
        )
        figure.colorbar(image, ax=axis)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def plot_curves(cells, sweep, path):
    """||dL/dh_k|| / ||dL/dh_T|| against the distance T - k, log scale: cells, then the forget-bias sweep."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, group, title in ((axes[0], cells, "cells"), (axes[1], sweep, "LSTM forget-gate bias b")):
        for m in group:
            distance = np.arange(len(m.state_norms))
            axis.plot(distance, m.state_norms[::-1] / m.state_norms[-1], label=m.name)
        axis.set(
            yscale="log",
            xlabel="distance from the error (steps)",
            ylabel="||dL/dh|| relative to distance 0",
            title=title,
        )
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.vanishing_gradients"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument(
        "--cells", type=comma_list(choices=tuple(RECURRENT_LAYERS)), help="comma-separated cells (default all three)"
    )
    parser.add_argument("--init", choices=INITIALISATIONS, help="lecture (N(0, 0.1), the default) or keras")
    parser.add_argument(
        "--forget-biases",
        dest="forget_biases",
        type=comma_list(float, example="1,3"),
        help="comma-separated LSTM forget-gate biases to sweep",
    )
    parser.add_argument("--steps", type=int, help="sequence length (default 128)")
    parser.add_argument("--heatmap", default="vanishing_heatmap.png", help="PNG: |dL/dh| per step and unit")
    parser.add_argument(
        "--curves", default="vanishing_curves.png", help="PNG: gradient norm against distance, log scale"
    )
    args = parser.parse_args(argv)
    for name in TRAINING_FLAGS:
        if getattr(args, name) is not None:
            parser.error(
                f"argument --{name.replace('_', '-')}: vanishing_gradients trains nothing; received "
                f"{getattr(args, name)!r}"
            )
    overrides = {
        k: v for k, v in common_overrides(args).items() if k in ("units", "batch_size", "seed", "builtin", "settings")
    }
    cells = args.cells or ([args.cell] if args.cell else None)
    with usage_errors(parser):
        config = config_from_preset(
            Config,
            PRESETS,
            args.preset,
            cells=cells,
            init=args.init,
            forget_biases=args.forget_biases,
            steps=args.steps,
            **overrides,
        )
    cells, sweep = train(config)
    print(format_table(config, cells, "cell"))
    print()
    print(format_table(config, sweep, "LSTM sweep"))
    print()
    print(format_claims(lecture_claims(cells, sweep)))
    heatmap, curves = plot_heatmap(cells, args.heatmap), plot_curves(cells, sweep, args.curves)
    for tag, path in (("gradient_heat_map", heatmap), ("gradient_norm_against_distance", curves)):
        summaries.log_png("vanishing_gradients", 0, tag, path)  # for TensorBoard, in a run directory only
    print(f"\nheat map: {heatmap}\ncurves: {curves}")
    return cells, sweep


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.vanishing_gradients"))
