"""Search a recipe's hyperparameters with keras-tuner; resumable and distributed.

    python -m tuning.search parity --tuner random --max-trials 10 --directory runs/tuning
    python -m tuning.search sentiment --tuner bayesian --max-trials 10 --max-epochs 6
    python -m tuning.search parity --tuner hyperband --max-epochs 9   # hyperband: budget in epochs

Each trial builds the recipe's model from a point of `tuning.space` (learning
rate on a log scale first, then size, L1/L2, dropout, batch size), trains it
until the validation loss stops improving, and scores it by its best
validation loss.  Every trial is written to DIRECTORY/PROJECT as it ends;
rerunning the same command after the job was killed continues the search:
finished trials are kept, the interrupted one runs again.  At the end it prints
the best trials (hyperparameters, the train/validation gap that shows
overfitting, parameters per training example), saves the best model as
DIRECTORY/PROJECT/best_model.keras and plots the validation loss of every
trial against its learning rate (val_loss_vs_learning_rate.png).

Distributed (keras-tuner's own engine): start one chief and any number of
workers with the same command and directory, the role set by environment
variables; workers take trials from the chief until the search is done.

    KERASTUNER_TUNER_ID=chief   KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m tuning.search parity ... &
    KERASTUNER_TUNER_ID=tuner0  KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m tuning.search parity ... &
    KERASTUNER_TUNER_ID=tuner1  KERASTUNER_ORACLE_IP=127.0.0.1 KERASTUNER_ORACLE_PORT=8000 \\
        python -m tuning.search parity ...

On several machines, set KERASTUNER_ORACLE_IP to the chief's address and give
every process the same --directory on a shared file system (the best model is
read back from the trials' checkpoints).
"""

import argparse
import dataclasses
import math
import os
import sys

import keras_tuner

from keras_rnn_lab import training
from keras_rnn_lab.diagnostics import capacity
from keras_rnn_lab.output_paths import check_writable_parent
from tuning import hypermodels

TUNERS = {
    "random": keras_tuner.RandomSearch,
    "bayesian": keras_tuner.BayesianOptimization,
    "hyperband": keras_tuner.Hyperband,
}
# A rejected (oversized) model is a FAILED trial; keras-tuner stops a search after
# this many in a row.  Its default, 3, would let the guard end a search early.
MAX_CONSECUTIVE_FAILED_TRIALS = 10


def role():
    """ "chief", "worker" or "single", from keras-tuner's environment variables."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    # keras-tuner's own rule: the process whose tuner id is "chief" serves the oracle.
    return "chief" if os.environ.get("KERASTUNER_TUNER_ID") == "chief" else "worker"


class _RecipeTuner:
    """Mixed into keras-tuner's tuners: one line of progress per trial, and a
    worker that cannot run trials says why and leaves, instead of failing
    every trial until the chief gives up."""

    def run_trial(self, trial, *args, **kwargs):
        try:
            return super().run_trial(trial, *args, **kwargs)
        except ImportError as error:
            # Not the trial's fault: this process lacks a package.  Hand the trial
            # back (INVALID: the oracle queues it for another tuner) and stop here.
            trial.status = keras_tuner.engine.trial.TrialStatus.INVALID
            trial.message = str(error)
            self.oracle.end_trial(trial)
            raise keras_tuner.errors.FatalError(environment_error(self.tuner_id, error)) from error

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        print(progress_line(self.oracle.get_trial(trial.trial_id)), flush=True)

    def reload(self):
        super().reload()
        # keras-tuner 1.4.8 writes oracle.json with a just-finished trial still
        # "ongoing" (it drops it from ongoing_trials after the save), and its
        # reload queues every ongoing trial for a retry: a search killed before
        # the next trial starts would run its finished trial again.  Its own
        # trial.json says COMPLETED; trust that.
        oracle, completed = self.oracle, keras_tuner.engine.trial.TrialStatus.COMPLETED
        if hasattr(oracle, "_retry_queue"):  # a worker's oracle is a client of the chief's
            oracle._retry_queue = [t for t in oracle._retry_queue if oracle.trials[t].status != completed]


def environment_error(tuner_id, error):
    return (
        f"tuner {tuner_id!r} cannot run trials: {error}. keras-tuner imports `tensorboard` in every "
        "trial on the TensorFlow backend; install this project's dependencies (pip install -e .) "
        "in this worker's environment and start it again."
    )


def preflight(hypermodel):
    """Fail now, with a clear message, rather than in every trial: the
    packages a trial needs import, and the default model builds."""
    try:
        import tensorboard.plugins.hparams.api  # noqa: F401  (what keras-tuner imports per trial)
    except ImportError as error:
        raise SystemExit(environment_error(os.environ.get("KERASTUNER_TUNER_ID", "tuner0"), error)) from None
    hypermodel.build(keras_tuner.HyperParameters())


class _DefaultFirst:
    """Mixed into an oracle: its first trial is the recipe's own configuration
    (every hyperparameter at its default), so a search starts where the recipe
    is and its best trial is never worse than that."""

    def populate_space(self, trial_id):
        if not self.trials:
            return {"status": "RUNNING", "values": {hp.name: hp.default for hp in self.hyperparameters.space}}
        return super().populate_space(trial_id)


ORACLES = {
    "random": keras_tuner.oracles.RandomSearchOracle,
    "bayesian": keras_tuner.oracles.BayesianOptimizationOracle,
}


def make_tuner(name, hypermodel, directory, project_name, max_trials=None, max_epochs=None, seed=0):
    """The keras-tuner tuner `name` over `hypermodel`, minimising val_loss,
    reloading DIRECTORY/PROJECT_NAME if a search already wrote there.

    Random and Bayesian searches try the recipe's defaults first (trial 0);
    Hyperband draws every configuration of its brackets at random.
    """
    if name not in TUNERS:
        raise ValueError(f"Argument `tuner` must be one of {sorted(TUNERS)}; received {name!r}.")
    common = dict(objective="val_loss", seed=seed, max_consecutive_failed_trials=MAX_CONSECUTIVE_FAILED_TRIALS)
    files = dict(
        hypermodel=hypermodel,
        directory=directory,
        project_name=project_name,
        overwrite=False,  # resume: an existing project is reloaded, its finished trials kept
    )
    if name == "hyperband":
        tuner_class = type("RecipeHyperband", (_RecipeTuner, keras_tuner.Hyperband), {})
        return tuner_class(max_epochs=max_epochs or hypermodel.base_config.epochs, **common, **files)
    training.check_positive_int("max_trials", max_trials)
    oracle_class = type(f"DefaultFirst{ORACLES[name].__name__}", (_DefaultFirst, ORACLES[name]), {})
    tuner_class = type("RecipeTuner", (_RecipeTuner, keras_tuner.Tuner), {})
    return tuner_class(oracle=oracle_class(max_trials=max_trials, **common), **files)


@dataclasses.dataclass
class TrialSummary:
    """One finished trial, as the report shows it."""

    trial_id: str
    val_loss: float  # the best epoch's validation loss (the score)
    loss: float  # the training loss at that epoch
    best_epoch: int  # 1-based: the epoch whose weights the trial kept
    capacity: capacity.Capacity
    values: dict  # hyperparameter name -> value
    val_accuracy: float = None  # at the best epoch, where the recipe measures accuracy

    @property
    def gap(self):
        """Validation minus training loss at the best epoch: > 0 and growing is overfitting."""
        return self.val_loss - self.loss


def summarize(tuner, trial):
    """A TrialSummary of a completed trial (the model is rebuilt to count its parameters)."""
    metrics = trial.metrics  # keras-tuner keeps the best epoch's values only
    best_step = trial.best_step

    def at_best_step(name):
        values = [o.value for o in metrics.get_history(name) if o.step == best_step] if metrics.exists(name) else []
        return float(values[0][0] if isinstance(values[0], list) else values[0]) if values else None

    hypermodel = tuner.hypermodel
    model = hypermodel.build_model(hypermodel.config(trial.hyperparameters))
    used = capacity.check_capacity(model, hypermodel.count_examples(), hypermodel.example_unit, action="ignore")
    values = dict(trial.hyperparameters.values)
    return TrialSummary(
        trial.trial_id,
        float(trial.score),
        at_best_step("loss"),
        best_step + 1,
        used,
        values,
        at_best_step("val_accuracy"),
    )


def _is_default(tuner, trial):
    """Whether `trial` ran the recipe's defaults (every hyperparameter at its default)."""
    space = tuner.oracle.hyperparameters.space
    return all(trial.hyperparameters.values.get(hp.name) == hp.default for hp in space)


def verdict(best, default):
    """One line: did the search beat the recipe's own configuration?"""
    if best.trial_id == default.trial_id:
        return f"no trial beat the recipe's defaults (trial {default.trial_id}, val_loss {default.val_loss:.4f})"
    return (
        f"trial {best.trial_id} beat the recipe's defaults (trial {default.trial_id}): "
        f"val_loss {best.val_loss:.4f} against {default.val_loss:.4f}"
    )


def progress_line(trial):
    """One line per ended trial: its id, status, score and hyperparameters."""
    if trial.score is not None:
        score = f"val_loss {trial.score:.4f}"
    else:  # a failed trial: the last line of its error
        score = ((trial.message or "").strip().splitlines() or ["no score"])[-1]
    values = ", ".join(
        f"{k}={_format_value(v)}" for k, v in trial.hyperparameters.values.items() if not k.startswith("tuner/")
    )
    return f"trial {trial.trial_id} {trial.status.lower()}: {score} | {values}"


def _format_value(value):
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def completed_trials(tuner):
    """Every completed trial with a finite score, best first."""
    trials = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED" and t.score is not None]
    return sorted((t for t in trials if math.isfinite(t.score)), key=lambda t: t.score)


def format_table(summaries, default_id=None):
    """The best trials, one row each with their hyperparameters; the recipe's
    defaults (trial `default_id`) are marked with a *."""
    header = (
        f"{'trial':>7} {'val_loss':>9} {'val_acc':>8} {'loss':>8} {'gap':>8} {'best epoch':>10} "
        f"{'params/example':>14}  hyperparameters"
    )
    lines = [header, "-" * len(header)]
    for s in summaries:
        values = ", ".join(f"{k}={_format_value(v)}" for k, v in s.values.items() if not k.startswith("tuner/"))
        accuracy = "" if s.val_accuracy is None else f"{s.val_accuracy:.4f}"
        trial_id = f"{s.trial_id}*" if s.trial_id == default_id else s.trial_id
        lines.append(
            f"{trial_id:>7} {s.val_loss:>9.4f} {accuracy:>8} {s.loss:>8.4f} {s.gap:>+8.4f} {s.best_epoch:>10} "
            f"{s.capacity.ratio:>14.3g}  {values}"
        )
    return "\n".join(lines)


def plot_learning_rates(trials, path):
    """Scatter of every completed trial's best val_loss against its learning rate (log x)."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    from matplotlib import pyplot

    rates = [t.hyperparameters.values["learning_rate"] for t in trials]
    losses = [t.score for t in trials]
    figure, axes = pyplot.subplots(figsize=(6, 4))
    axes.scatter(rates, losses)
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("best validation loss")
    axes.set_title("The learning rate matters most: validation loss per trial")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
    return path


def report(tuner, top=5):
    """Print the best trials and how the best compares with trial 0 (the
    recipe's defaults, when the tuner tried them), save the best model and the
    learning-rate plot."""
    trials = completed_trials(tuner)
    if not trials:
        print("no trial completed; nothing to report")
        return None
    summaries = [summarize(tuner, t) for t in trials[:top]]
    default = next((t for t in trials if _is_default(tuner, t)), None)
    if default is not None and default not in trials[:top]:
        summaries.append(summarize(tuner, default))
    print(f"\nbest {min(top, len(trials))} of {len(trials)} completed trials ({tuner.project_dir}):")
    print(format_table(summaries, default.trial_id if default is not None else None))
    if default is not None:
        print("* the recipe's defaults")
    if default is not None:
        print(verdict(summaries[0], summarize(tuner, default)))
    best_path = os.path.join(tuner.project_dir, "best_model.keras")
    training.model_files.save_model(tuner.get_best_models(1)[0], best_path, tuner.hypermodel.recipe.name)
    plot_path = plot_learning_rates(trials, os.path.join(tuner.project_dir, "val_loss_vs_learning_rate.png"))
    print(f"best model: {best_path}\nplot: {plot_path}")
    return summaries


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog=training.program("python -m tuning.search"),
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recipe", choices=sorted(hypermodels.HYPERMODELS), help="the recipe to tune")
    parser.add_argument("--tuner", default="random", choices=sorted(TUNERS), help="search algorithm")
    parser.add_argument(
        "--max-trials",
        dest="max_trials",
        type=training.positive_int,
        default=10,
        help="trials in all (random, bayesian); hyperband's budget is --max-epochs",
    )
    parser.add_argument(
        "--max-epochs",
        dest="max_epochs",
        type=training.positive_int,
        help="most epochs per trial (default: the preset's epochs); early stopping ends trials sooner",
    )
    parser.add_argument("--directory", default="tuning_runs", help="where trials are written (resume: the same one)")
    parser.add_argument("--project", help="project name inside --directory (default: the recipe's name)")
    parser.add_argument("--preset", default="default", help="the recipe preset every trial starts from")
    parser.add_argument("--seed", type=training.seed, default=0, help="the search's and every trial's seed")
    parser.add_argument(
        "--reject-oversized",
        dest="reject_oversized",
        action="store_true",
        help="fail trials whose model has more parameters than training examples",
    )
    parser.add_argument("--top", type=training.positive_int, default=5, help="trials in the final table")
    parser.add_argument(
        "--verbose",
        type=int,
        choices=(0, 1, 2),
        help="Keras fit verbosity per trial (default: the bar on a terminal, a line per epoch otherwise)",
    )
    args = parser.parse_args(argv)
    with training.usage_errors(parser):
        check_writable_parent(args.directory, "--directory", kind="directory")  # before any trial, not after one
        overrides = {"seed": args.seed, "epochs": args.max_epochs}
        hypermodel = hypermodels.get(
            args.recipe,
            preset=args.preset,
            capacity_action="reject" if args.reject_oversized else "warn",
            verbose=training.progress_verbosity(args.verbose),
            **overrides,
        )
        if role() == "worker":
            preflight(hypermodel)
        tuner = make_tuner(
            args.tuner,
            hypermodel,
            args.directory,
            args.project or args.recipe,
            max_trials=args.max_trials,
            max_epochs=args.max_epochs,
            seed=args.seed,
        )
    tuner.search()
    if role() == "worker":
        return None
    return report(tuner, args.top)


if __name__ == "__main__":
    sys.exit(training.run_command(main, "python -m tuning.search"))
