"""`keras-rnn-lab`: one command for every recipe, the search, export and the benchmark.

    keras-rnn-lab list                                     # recipes, topologies, what each shows
    keras-rnn-lab train parity --preset tiny               # = python -m recipes.parity --preset tiny
    keras-rnn-lab train sentiment --set dropout=0.4 --out sentiment.keras
    keras-rnn-lab train parity --run-dir runs/parity       # config, checkpoints, logs, plots; rerun resumes
    keras-rnn-lab evaluate sentiment --model sentiment.keras     # loss and metrics on its validation split
    keras-rnn-lab sample --model sonnets.keras --prime "From fairest" --length 300
    keras-rnn-lab export sentiment --model sentiment.keras --out exported/sentiment
    keras-rnn-lab tune parity --max-trials 10              # = python -m tuning.search parity ...
    keras-rnn-lab bench --cells lstm                       # = python -m keras_rnn_lab.benchmark ...

`train RECIPE ...` passes everything after the recipe to its own command, so the
flags are the recipe's (`keras-rnn-lab train RECIPE --help`); the common ones
(--preset, --cell, --units, --epochs, --batch-size, --learning-rate, --seed,
--clipnorm, --clipvalue, --builtin, --out, --set KEY=VALUE) mean the same in
every recipe.  An unknown recipe, preset or Config key is a one-line usage
error listing the valid choices (exit 2).
"""

import argparse
import importlib
import os
import sys

import keras

from keras_rnn_lab import training
from keras_rnn_lab.training import runs


def catalogue():
    """Recipe name -> (topology, what it shows), from `recipes.CATALOGUE`
    (the package alone: no recipe module is imported to list them)."""
    return importlib.import_module("recipes").CATALOGUE


def recipe_module(name):
    """The module `recipes.NAME`, imported now: only the recipe a command uses loads."""
    return importlib.import_module(f"recipes.{name}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(
        prog="keras-rnn-lab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("list", help="the recipes, their topology and what each shows")
    for command, text in (
        ("train", "train a recipe (its own flags follow; --run-dir DIR, default runs/RECIPE)"),
        ("evaluate", "score a saved model on the recipe's validation data"),
        ("export", "export a trained recipe model as a SavedModel"),
    ):
        sub = commands.add_parser(command, help=text, add_help=False)
        sub.add_argument("recipe", choices=sorted(catalogue()), help="recipe name (see `list`)")
        sub.add_argument("rest", nargs=argparse.REMAINDER)
    for command, text in (
        ("sample", "generate text with a saved char_lm model"),
        ("tune", "hyperparameter search (python -m tuning.search)"),
        ("bench", "the speed benchmark (python -m keras_rnn_lab.benchmark)"),
    ):
        sub = commands.add_parser(command, help=text, add_help=False)
        sub.add_argument("rest", nargs=argparse.REMAINDER)
    with_recipe = ("train", "evaluate", "export")
    args = parser.parse_args(argv[:1] + (argv[1:2] if argv[:1] and argv[0] in with_recipe else []))
    rest = argv[2:] if args.command in with_recipe else argv[1:]
    if args.command == "list":
        width = max(map(len, catalogue()))
        for name, (topology, text) in catalogue().items():
            print(f"{name:<{width}}  {topology:<30}  {text}")
        return 0
    if args.command == "train" and "--strategy" in rest:
        return train_distributed(args.recipe, rest)
    if args.command == "train":
        rest, run_dir = _pop_run_dir(rest, parser, default=os.path.join("runs", args.recipe))
        if run_dir is None:
            return recipe_module(args.recipe).main(rest)
        with runs.active(runs.RunDirectory(run_dir)):
            return recipe_module(args.recipe).main(rest)
    if args.command == "evaluate":
        return evaluate(args.recipe, rest)
    if args.command == "export":
        return recipe_module(args.recipe).main(["export", *rest])
    if args.command == "sample":
        return recipe_module("char_lm").main(["sample", *rest])
    if args.command == "tune":
        from tuning import search

        return search.main(rest)
    from keras_rnn_lab import benchmark

    return benchmark.main(rest)


def train_distributed(recipe_name, argv):
    """`train RECIPE --strategy mirrored|multi-worker`: the recipe's model and
    training data (through its `Recipe` contract), trained by
    keras_rnn_lab.training.distributed's custom step; returns (model, history)."""
    from keras_rnn_lab.training import distributed

    parser = argparse.ArgumentParser(
        prog=f"keras-rnn-lab train {recipe_name}",
        description="Train on several devices or machines (tf.distribute).",
    )
    parser.add_argument("--strategy", required=True, choices=distributed.STRATEGIES)
    parser.add_argument("--preset", default="default")
    parser.add_argument("--epochs", type=training.positive_int, help="epochs (default: the preset's)")
    parser.add_argument("--set", dest="settings", type=training.setting, action="append", metavar="KEY=VALUE")
    parser.add_argument("--out", type=training.keras_path, help="save the model here (workers beside it)")
    parser.add_argument(
        "--run-dir",
        dest="run_dir",
        default=os.path.join("runs", f"{recipe_name}-distributed"),
        help="metrics.csv and last.keras after every epoch (default runs/RECIPE-distributed)",
    )
    args = parser.parse_args(argv)
    with training.usage_errors(parser):
        recipe = importlib.import_module("recipes").find(recipe_name)
        config = recipe.config(args.preset, dict(args.settings or []), epochs=args.epochs)
        strategy = distributed.make_strategy(args.strategy)
    data = recipe.load_data(config)
    keras.utils.set_random_seed(config.seed)  # the same initial weights on every worker
    dataset, batch_size = _examples(recipe.fit_arguments(config, recipe.build_model(config, data), data), config.seed)
    keras.utils.set_random_seed(config.seed)
    os.makedirs(args.run_dir, exist_ok=True)
    model, history = distributed.fit_distributed(
        strategy,
        lambda: recipe.build_model(config, data),
        dataset,
        config.epochs,
        batch_size,
        log_path=os.path.join(args.run_dir, "metrics.csv"),
        checkpoint_path=os.path.join(args.run_dir, "last.keras"),
    )
    if args.out is not None:
        print(f"saved {distributed.save(model, args.out)}")
    return model, history


def evaluate(recipe_name, argv):
    """`evaluate RECIPE --model M.keras [--preset P] [--set K=V]`: the saved
    model's loss and metrics on the recipe's validation data; returns them."""
    parser = argparse.ArgumentParser(
        prog=f"keras-rnn-lab evaluate {recipe_name}",
        description="Score a saved model on the recipe's validation data.",
    )
    parser.add_argument("--model", required=True, help="a .keras file the recipe saved")
    parser.add_argument("--preset", default="default", help="the preset whose data to use (as trained)")
    parser.add_argument("--set", dest="settings", type=training.setting, action="append", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    with training.usage_errors(parser):
        if not os.path.isfile(args.model):
            raise ValueError(f"Argument --model: no such file {args.model!r}.")
        recipe = importlib.import_module("recipes").find(recipe_name)
        config = recipe.config(args.preset, dict(args.settings or []))
    model = keras.saving.load_model(args.model)
    validation = recipe.fit_arguments(config, model, recipe.load_data(config))["validation_data"]
    if isinstance(validation, tuple):  # arrays: (x, y) or (x, y, sample_weight)
        x, y, *weights = validation
        scores = model.evaluate(x, y, sample_weight=weights[0] if weights else None, verbose=0, return_dict=True)
    else:  # a tf.data pipeline of batches
        scores = model.evaluate(validation, verbose=0, return_dict=True)
    for name, value in scores.items():
        print(f"{name}: {value:.4f}")
    return scores


def _examples(fit_arguments, seed):
    """(unbatched, shuffled tf.data of the training examples, batch size) from
    a recipe's `model.fit` arguments."""
    import tensorflow as tf

    x = fit_arguments["x"]
    if isinstance(x, tf.data.Dataset):  # already batched (and reshuffled each epoch) by the recipe
        first = next(iter(x))
        return x.unbatch(), int(tf.shape(tf.nest.flatten(first[1])[0])[0])
    parts = [x, fit_arguments["y"]] + ([fit_arguments["sample_weight"]] if "sample_weight" in fit_arguments else [])
    count = len(fit_arguments["y"])
    dataset = tf.data.Dataset.from_tensor_slices(tuple(parts)).shuffle(count, seed=seed, reshuffle_each_iteration=True)
    return dataset, fit_arguments["batch_size"]


def _pop_run_dir(rest, parser, default):
    """(the recipe's arguments, the run directory: --run-dir's, `default`
    without it, None with --no-run-dir)."""
    if "--no-run-dir" in rest:
        return [a for a in rest if a != "--no-run-dir"], None
    if "--run-dir" not in rest:
        return rest, default
    at = rest.index("--run-dir")
    if at + 1 >= len(rest) or rest[at + 1].startswith("-"):
        parser.error("argument --run-dir: expected a directory")
    return rest[:at] + rest[at + 2 :], rest[at + 1]


def console_main():
    """The console script's entry point: exit status 0 after a command that returns."""
    main()
    return 0


if __name__ == "__main__":
    sys.exit(console_main())
