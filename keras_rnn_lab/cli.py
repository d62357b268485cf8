"""`keras-rnn-lab`: one command for every recipe, the search, export and the benchmark.

    keras-rnn-lab list                                     # recipes, topologies, what each shows
    keras-rnn-lab train parity --preset tiny               # = python -m recipes.parity --preset tiny
    keras-rnn-lab train sentiment --set dropout=0.4 --out sentiment.keras
    keras-rnn-lab train parity --run-dir runs/parity       # config, checkpoints, logs, plots; rerun resumes
    keras-rnn-lab evaluate sentiment --model sentiment.keras     # loss and metrics on its validation split
    keras-rnn-lab sample --model sonnets.keras --prime "From fairest" --length 300
    keras-rnn-lab export sentiment --model sentiment.keras --out exported/sentiment
    keras-rnn-lab export parity --model parity.keras --out exported/parity-tflite --format tflite   # or onnx
    keras-rnn-lab translate --model numbers.keras "two hundred and one"   # a saved translation model
    printf 'hello\nwhat is ai\n' | keras-rnn-lab chat --model chat.keras   # a saved dialogue model
    keras-rnn-lab tune parity --max-trials 10              # = python -m tuning.search parity ...
    keras-rnn-lab bench --cells lstm                       # = python -m keras_rnn_lab.benchmark ...

`train RECIPE ...` passes everything after the recipe to its own command, so the
flags are the recipe's (`keras-rnn-lab train RECIPE --help`); the common ones
(--preset, --cell, --units, --epochs, --batch-size, --learning-rate, --seed,
--clipnorm, --clipvalue, --builtin, --out, --set KEY=VALUE) mean the same in
every recipe.  An unknown recipe, preset or Config key is a one-line usage
error listing the valid choices (exit 2); every mistake is one or two lines
(exit 2 for usage, 1 when a run cannot go on), `--debug` (or
KERAS_RNN_LAB_DEBUG=1) adds the traceback.  `train` also takes --run-dir DIR
(or --run-dir=DIR), --no-run-dir and --fresh (empty the run directory first).
"""

import argparse
import importlib
import os
import shlex
import sys

import keras

from keras_rnn_lab import training
from keras_rnn_lab.training import model_files, runs


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
        ("train", "train a recipe (its own flags follow; --run-dir DIR, default runs/RECIPE; --fresh)"),
        ("evaluate", "score a saved model on the recipe's validation data"),
        ("export", "export a trained recipe model: SavedModel, TFLite (--format tflite) or ONNX (--format onnx)"),
    ):
        sub = commands.add_parser(command, help=text, add_help=False)
        sub.add_argument("recipe", choices=sorted(catalogue()), help="recipe name (see `list`)")
        sub.add_argument("rest", nargs=argparse.REMAINDER)
    for command, text in (
        ("sample", "generate text with a saved char_lm model"),
        ("translate", "translate sentences with a saved translation model"),
        ("chat", "reply to prompts (stdin, one a line) with a saved dialogue model"),
        ("tune", "hyperparameter search (python -m tuning.search)"),
        ("bench", "the speed benchmark (python -m keras_rnn_lab.benchmark)"),
    ):
        sub = commands.add_parser(command, help=text, add_help=False)
        sub.add_argument("rest", nargs=argparse.REMAINDER)
    with_recipe = ("train", "evaluate", "export")
    args = parser.parse_args(argv[:1] + (argv[1:2] if argv[:1] and argv[0] in with_recipe else []))
    rest = argv[2:] if args.command in with_recipe else argv[1:]
    label = f"keras-rnn-lab {args.command}" + (f" {args.recipe}" if args.command in with_recipe else "")
    with training.typed_as(label):
        return _dispatch(args, rest, parser)


def _dispatch(args, rest, parser):
    """Run the parsed command (`main` has set how it was typed)."""
    if args.command == "list":
        if rest:
            parser.error(f"unrecognized arguments: {' '.join(rest)}")
        width = max(map(len, catalogue()))
        for name, (topology, text) in catalogue().items():
            print(f"{name:<{width}}  {topology:<30}  {text}")
        return 0
    if args.command == "train" and any(a == "--strategy" or a.startswith("--strategy=") for a in rest):
        for flag in ("--fresh", "--no-run-dir"):
            if flag in rest:  # the distributed path has no resume, so neither has meaning there
                parser.error(f"argument {flag}: not allowed with --strategy")
        return train_distributed(args.recipe, rest)
    if args.command == "train":
        recipe_arguments, run_dir, fresh = _pop_run_options(rest, parser, default=os.path.join("runs", args.recipe))
        if run_dir is None:
            return recipe_module(args.recipe).main(recipe_arguments)
        again = shlex.join(["keras-rnn-lab", "train", args.recipe, *rest, *([] if fresh else ["--fresh"])])
        with runs.active(runs.RunDirectory(run_dir, recipe=args.recipe, fresh=fresh, command=again)):
            return recipe_module(args.recipe).main(recipe_arguments)
    if args.command == "evaluate":
        return evaluate(args.recipe, rest)
    if args.command == "export":
        return recipe_module(args.recipe).main(["export", *rest])
    if args.command == "sample":
        return recipe_module("char_lm").main(["sample", *rest])
    if args.command == "translate":
        return recipe_module("translation").main(["translate", *rest])
    if args.command == "chat":
        return recipe_module("dialogue").main(["chat", *rest])
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
        prog=training.program(f"keras-rnn-lab train {recipe_name}"),
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
    parser.add_argument(
        "--peer-timeout",
        dest="peer_timeout",
        type=training.positive_float,
        help=f"multi-worker: seconds to wait for the other workers in TF_CONFIG before giving up "
        f"(default {distributed.PEER_TIMEOUT_VARIABLE} or {distributed.DEFAULT_PEER_TIMEOUT:g})",
    )
    args = parser.parse_args(argv)
    with training.usage_errors(parser):
        recipe = importlib.import_module("recipes").find(recipe_name)
        config = recipe.config(args.preset, dict(args.settings or []), epochs=args.epochs)
        strategy = distributed.make_strategy(args.strategy, peer_timeout=args.peer_timeout)
    data = recipe.load_data(config)
    keras.utils.set_random_seed(config.seed)  # the same initial weights on every worker
    dataset, batch_size = _examples(recipe.fit_arguments(config, recipe.build_model(config, data), data), config.seed)
    keras.utils.set_random_seed(config.seed)
    os.makedirs(args.run_dir, exist_ok=True)
    model, history = distributed.fit_distributed(
        strategy,
        lambda: model_files.tag(recipe.build_model(config, data), recipe_name),  # its saves record the recipe
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
        recipe = importlib.import_module("recipes").find(recipe_name)
        config = recipe.config(args.preset, dict(args.settings or []))
        model = recipe.load_model(args.model)
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


def _pop_run_options(rest, parser, default):
    """(the recipe's arguments, the run directory, fresh): --run-dir DIR (or
    --run-dir=DIR; `default` without it, None with --no-run-dir) and --fresh
    are the CLI's, the rest goes to the recipe."""
    recipe_arguments, run_dir, fresh, off = [], default, False, False
    items = iter(rest)
    for item in items:
        if item == "--no-run-dir":
            off = True
        elif item == "--fresh":
            fresh = True
        elif item == "--run-dir" or item.startswith("--run-dir="):
            value = item.partition("=")[2] if "=" in item else next(items, None)
            if not value or value.startswith("-"):
                parser.error(f"argument --run-dir: expected a directory; received {value!r}")
            run_dir = value
        else:
            recipe_arguments.append(item)
    if off and (fresh or run_dir != default):
        parser.error("argument --no-run-dir: not allowed with --run-dir or --fresh")
    return recipe_arguments, (None if off else run_dir), fresh


def console_main():
    """The console script's entry point: the command's exit status (0, 1 or 2;
    a user's mistake is one or two lines, --debug shows the traceback)."""
    return training.run_command(main, "keras-rnn-lab")


if __name__ == "__main__":
    sys.exit(console_main())
