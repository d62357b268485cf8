"""Long-range memory: can the network still use what it saw L steps ago?

Two tasks, each swept over the distance L:

  distractor  the first token (A or B) decides the label; L random distractor
              tokens follow, and the answer is read after the last one.
              Chance is 50%.
  adding      L steps of (value in [0, 1), marker in {0, 1}); the target is the
              sum of the two marked values, one marked in the first half of the
              sequence and one in the second.  "Accuracy" is the fraction
              answered within 0.04 (Hochreiter & Schmidhuber, 1997); always
              answering 1.0 scores about 8%.

for SimpleRNN, LSTM and GRU, each under the lecture's initialisation (kernel and
recurrent kernel from N(0, 0.1)) and under Keras's defaults (Glorot kernel,
orthogonal recurrent kernel), and for the LSTM with forget-gate bias 1 and 3:

    python -m recipes.long_memory --lengths 100 --seeds 0,1,2,3,4   # the acceptance runs, L = 100 (~8 min)
    python -m recipes.long_memory --tasks distractor,adding      # the full grid (hours on 2 cores)
    python -m recipes.long_memory --cells lstm --inits keras --forget-biases 3 --lengths 100,200,500
    python -m recipes.long_memory --preset tiny                  # seconds, a smoke test

Every finished run prints its row at once and, with `--log runs.jsonl`, is
appended there; the table and the plot (`--plot`, accuracy against L, one line
per configuration, one panel per task) are drawn from the runs of this command
and of the log.  A run stops early once solved (validation accuracy >= 0.99)
or, with `--patience N`, when validation accuracy has not improved by 0.01
for N epochs (cheaper, but some runs sit at chance for 8-10 epochs and then
solve the task: the default waits the whole 15).

What to expect (distractor, L = 100, seeds 0-4): the LSTM with forget bias 3 and the
SimpleRNN under Keras's defaults solve it in their first epoch (5/5); under the
lecture's initialisation the typical run stays at chance.  The README's
"BPTT made visible" section gives the measured grid, "Recipe measurements"
why.
"""

import argparse
import dataclasses
import json
import os
import sys
import time

import keras
import numpy as np

from keras_rnn_lab import training
from keras_rnn_lab.data.text_files import read_text
from keras_rnn_lab.errors import UsageError
from keras_rnn_lab.training import (
    INITIALISATIONS,
    RECURRENT_LAYERS,
    TrainingConfig,
    add_common_arguments,
    check_positive_int,
    comma_list,
    common_overrides,
    config_from_preset,
    fit_checked,
    initialisation,
    make_optimizer,
    positive_int,
    recurrent_layer,
    stop_early,
    usage_errors,
)
from keras_rnn_lab.training.regularization import layer_regularisation
from recipes.parts.long_memory_report import format_table, plot

TASKS = ("distractor", "adding")
LENGTHS = (10, 50, 100, 200, 500)
FORGET_BIASES = (1.0, 3.0)
# Distractor tokens: A = 1 and B = 2 carry the label, 3..15 are distractors.
SIGNAL_TOKENS = (1, 2)
VOCABULARY_SIZE = 16
# Adding problem: an answer within this of the target counts as right.
ADDING_TOLERANCE = 0.04
EVALUATION_BATCH_SIZE = 500
# A run at or above this validation accuracy counts as solving the task in the
# table's "solved" count (the acceptance's bar for the LSTM with forget bias 3).
SOLVED_BAR = 0.95


@dataclasses.dataclass
class Config(TrainingConfig):
    """One run of the sweep; the shared training fields and their checks come
    from TrainingConfig."""

    task: str = "distractor"  # or "adding"
    length: int = 100  # L: distractor tokens after the signal, or the adding sequence's length
    init: str = "lecture"  # "lecture": N(0, 0.1) weights; "keras": Glorot kernel, orthogonal recurrent kernel
    forget_bias: float = None  # LSTM only: the forget gate's starting bias (None: Keras's 1)
    embedding_dim: int = 16  # distractor tokens only
    train_size: int = 8_000  # the reference measurement's size
    validation_size: int = 1_000  # early stopping and the reported accuracy (fresh sequences)
    epochs: int = 15  # upper bound: solved runs stop once validation accuracy >= solved_accuracy
    batch_size: int = 64
    learning_rate: float = 3e-3  # Adam, as in the reference measurement
    patience: int = 15  # epochs without +0.01 validation accuracy before giving up; measured: runs flat at
    # chance for 8-10 epochs then solved L = 100, so the default never gives up early (--patience 5: cheaper, may miss)
    solved_accuracy: float = 0.99

    def __post_init__(self):
        super().__post_init__()
        if self.task not in TASKS:
            raise ValueError(f"Argument `task` must be one of {TASKS}; received {self.task!r}.")
        if self.init not in INITIALISATIONS:
            raise ValueError(f"Argument `init` must be one of {INITIALISATIONS}; received {self.init!r}.")
        if self.forget_bias is not None and self.cell != "lstm":
            raise ValueError(
                f"Argument `forget_bias` applies to the LSTM only; received cell={self.cell!r}, "
                f"forget_bias={self.forget_bias!r}."
            )
        for name in ("length", "embedding_dim", "train_size", "validation_size"):
            check_positive_int(name, getattr(self, name))
        if self.task == "adding" and self.length < 2:
            raise ValueError(
                f"Argument `length` must be >= 2 for the adding problem (two marked steps); received {self.length}."
            )

    @property
    def label(self):
        """Short name of the configuration: cell, forget bias, initialisation."""
        bias = "" if self.cell != "lstm" else f" fb{self.forget_bias if self.forget_bias is not None else 1:g}"
        return f"{self.cell}{bias} {self.init}"


PRESETS = {
    "tiny": dict(length=10, units=8, embedding_dim=4, train_size=512, validation_size=128, epochs=3, batch_size=64),
    "default": {},
}


def config_for(preset, **overrides):
    """The Config of a named preset, with overrides."""
    return config_from_preset(Config, PRESETS, preset, **overrides)


def distractor_data(rng, count, length):
    """tokens (count, 1 + length) int32 and labels (count,): the first token is
    A (label 0) or B (label 1), then `length` distractors."""
    labels = rng.integers(0, 2, size=count)
    distractors = rng.integers(SIGNAL_TOKENS[1] + 1, VOCABULARY_SIZE, size=(count, length))
    tokens = np.concatenate([np.asarray(SIGNAL_TOKENS)[labels][:, None], distractors], axis=1)
    return tokens.astype("int32"), labels.astype("int32")


def adding_data(rng, count, length):
    """inputs (count, length, 2) float32 (value, marker) and targets (count, 1):
    the sum of the values at the two marked steps, one in each half."""
    values = rng.uniform(0.0, 1.0, size=(count, length))
    half = length // 2
    first = rng.integers(0, half, size=count)
    second = rng.integers(half, length, size=count)
    markers = np.zeros((count, length))
    rows = np.arange(count)
    markers[rows, first] = 1.0
    markers[rows, second] = 1.0
    targets = values[rows, first] + values[rows, second]
    return np.stack([values, markers], axis=-1).astype("float32"), targets[:, None].astype("float32")


def load_data(config):
    """{"train": (x, y), "validation": (x, y)}, fixed by `config.seed`."""
    make = distractor_data if config.task == "distractor" else adding_data
    streams = np.random.SeedSequence(config.seed).spawn(2)
    return {
        name: make(np.random.default_rng(stream), size, config.length)
        for name, stream, size in zip(("train", "validation"), streams, (config.train_size, config.validation_size))
    }


@keras.saving.register_keras_serializable(package="recipes.long_memory")
def within_tolerance(targets, predictions):
    """1 where the adding problem's answer is within ADDING_TOLERANCE of the target."""
    return keras.ops.cast(keras.ops.abs(targets - predictions) < ADDING_TOLERANCE, "float32")


def build_model(config):
    """distractor: tokens -> Embedding -> recurrent layer -> Dense(2) logits;
    adding: (value, marker) steps -> recurrent layer -> Dense(1).  Compiled."""
    layer = recurrent_layer(
        config.cell,
        config.units,
        builtin=config.builtin,
        name="recurrent",
        **initialisation(config.cell, config.init, config.forget_bias),
        **layer_regularisation(config),
    )
    if config.task == "distractor":
        model = keras.Sequential(
            [
                keras.Input((None,), dtype="int32"),  # (batch, 1 + L) tokens
                keras.layers.Embedding(VOCABULARY_SIZE, config.embedding_dim),
                layer,  # (batch, units): the state after the last distractor
                keras.layers.Dense(2),
            ],
            name=f"distractor_{config.cell}",
        )
        loss, metric = keras.losses.SparseCategoricalCrossentropy(from_logits=True), "accuracy"
    else:
        model = keras.Sequential(
            [keras.Input((None, 2)), layer, keras.layers.Dense(1)],  # (batch, L, 2) -> (batch, 1)
            name=f"adding_{config.cell}",
        )
        loss, metric = "mse", keras.metrics.MeanMetricWrapper(within_tolerance, name="accuracy")
    model.compile(optimizer=make_optimizer(config), loss=loss, metrics=[metric])
    return model


@dataclasses.dataclass
class RunResult:
    config: Config
    accuracy: float  # on the validation sequences, best epoch's weights
    epochs: int  # epochs run
    seconds: float

    def record(self):
        """One JSON-able line for the log."""
        return {
            "task": self.config.task,
            "label": self.config.label,
            "length": self.config.length,
            "accuracy": self.accuracy,
            "epochs": self.epochs,
            "seconds": round(self.seconds, 1),
            "builtin": self.config.builtin,
            "seed": self.config.seed,
        }


def train(config, verbose=0):
    """One run: fit until solved, flat or out of epochs; accuracy of the best epoch."""
    start = time.perf_counter()
    keras.utils.set_random_seed(config.seed)
    data = load_data(config)
    model = build_model(config)
    callbacks = stop_early("val_accuracy", config.patience, mode="max", min_delta=0.01, stop_at=config.solved_accuracy)
    history = fit_checked(  # model.fit, with the run directory's rules (see Recipe.fit)
        model,
        config.epochs,
        callbacks,
        config,
        x=data["train"][0],
        y=data["train"][1],
        batch_size=config.batch_size,
        validation_data=data["validation"],
        verbose=verbose,
    )
    _, accuracy = model.evaluate(*data["validation"], batch_size=EVALUATION_BATCH_SIZE, verbose=0)
    return RunResult(config, float(accuracy), len(history.history["loss"]), time.perf_counter() - start)


def grid(preset, tasks, lengths, cells, inits, forget_biases, seeds=None, **overrides):
    """Every Config of the sweep, shortest lengths first (cheap results early);
    each configuration once per seed in `seeds` (None: the preset's or --seed's)."""
    configs = []
    for task in tasks:
        for length in lengths:
            for cell in cells:
                for init in inits:
                    for bias in forget_biases if cell == "lstm" else (None,):
                        for seed in seeds or (overrides.get("seed"),):
                            seeded = {**overrides, "seed": seed}
                            configs.append(
                                config_from_preset(
                                    Config,
                                    PRESETS,
                                    preset,
                                    task=task,
                                    length=length,
                                    cell=cell,
                                    init=init,
                                    forget_bias=bias,
                                    **seeded,
                                )
                            )
    return configs


def main(argv=None):
    """Run the grid, printing each row as it finishes; then the table and the plot."""
    parser = argparse.ArgumentParser(
        prog=training.program("python -m recipes.long_memory"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_common_arguments(parser, PRESETS)
    parser.add_argument(
        "--tasks", type=comma_list(choices=TASKS), default=["distractor"], help="comma-separated: distractor,adding"
    )
    parser.add_argument(
        "--lengths",
        type=comma_list(int, minimum=1, example="10,100"),
        default=list(LENGTHS),
        help="comma-separated L values (default 10,50,100,200,500)",
    )
    parser.add_argument(
        "--cells", type=comma_list(choices=tuple(RECURRENT_LAYERS)), help="comma-separated cells (default all three)"
    )
    parser.add_argument(
        "--inits", type=comma_list(choices=INITIALISATIONS), default=list(INITIALISATIONS), help="lecture,keras"
    )
    parser.add_argument(
        "--forget-biases",
        dest="forget_biases",
        type=comma_list(float, example="1,3"),
        default=list(FORGET_BIASES),
        help="LSTM forget-gate biases (default 1,3)",
    )
    parser.add_argument(
        "--seeds",
        type=comma_list(int, minimum=0, example="0,1,2"),
        help="comma-separated seeds: every configuration once per seed; "
        "the table shows the median and how many runs solved the task",
    )
    parser.add_argument(
        "--patience",
        type=positive_int,
        help="epochs without +0.01 validation accuracy before giving up (default 15: never early)",
    )
    parser.add_argument("--plot", default="long_memory.png", help="PNG of accuracy against L")
    parser.add_argument("--log", help="append every run's result to this JSON-lines file; its runs join the table")
    args = parser.parse_args(argv)
    if args.out is not None:
        parser.error("argument --out: long_memory trains many models and saves none")
    overrides = {**common_overrides(args), "patience": args.patience}
    cells = args.cells or ([overrides.pop("cell")] if overrides["cell"] else ["simple_rnn", "lstm", "gru"])
    overrides.pop("cell", None)
    with usage_errors(parser):  # every Config first: a bad value stops the command before any training
        configs = grid(
            args.preset, args.tasks, args.lengths, cells, args.inits, args.forget_biases, args.seeds, **overrides
        )
    records = _read_log(args.log)
    for config in configs:
        result = train(config)
        record = result.record()
        records.append(record)
        print(
            f"{config.task:<10} L={config.length:<4} {config.label:<20} seed {config.seed:<3} "
            f"{100 * result.accuracy:6.1f}%  "
            f"{result.epochs:>2} epochs {result.seconds:7.1f} s",
            flush=True,
        )
        if args.log:
            with open(args.log, "a", encoding="utf-8") as log:
                log.write(json.dumps(record) + "\n")
    print()
    print(format_table(records, TASKS, SOLVED_BAR))
    print(f"plot: {plot(records, args.plot, TASKS)}")
    return records


def _read_log(path):
    """The records of an earlier --log file (none before the first run), or a UsageError naming it."""
    if not path or not os.path.exists(path):
        return []
    records = []
    for number, line in enumerate(read_text(path, "--log", "a UTF-8 JSON-lines file of runs").splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise UsageError(
                    f"argument --log: line {number} of {path!r} is not JSON ({error.msg}); expected a JSON-lines "
                    "file of runs, as --log writes"
                ) from None
    return records


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m recipes.long_memory"))
