"""The contract every recipe keeps, parametrised over all of them (replacing
per-recipe copies of the same tests), and the one direction of imports.

- A bad common flag on a recipe's command line exits 2 and names the option.
- A bad Config value (any of TrainingConfig's fields) is a ValueError or
  TypeError naming the field; an unknown `--set` key names the key.
- `keras-rnn-lab train NAME --out M.keras` trains (recorded in the default
  run directory) and saves the trained model: a fresh interpreter that loads
  the file predicts what the trained model predicted.
- The export round trip (served in a TensorFlow-only process) is
  tests/test_recipe_exports.py, one case per recipe.
- `import keras_rnn_lab` (and every library module) loads neither `recipes`,
  `tuning` nor `tensorflow_datasets` unless a data reader that needs TFDS is
  imported.
"""

import importlib
import pickle
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import recipes
from keras_rnn_lab import cli
from keras_rnn_lab.training import TrainingConfig, config_from_preset, model_files

ALL = sorted(recipes.CATALOGUE)
# Recipes whose Config is a TrainingConfig (vanishing_gradients trains nothing).
TRAINING = sorted(set(recipes.TRAINABLE) | {"long_memory", "exploding_gradients"})


def module(name):
    return importlib.import_module(f"recipes.{name}")


# --- the command line --------------------------------------------------------------
# (argv, what the error line must say): the common flags every recipe takes.
BAD_COMMON_FLAGS = [
    (["--units", "0"], "argument --units: expected a positive int; received '0'"),
    (["--epochs", "-1"], "argument --epochs: expected a positive int; received '-1'"),
    (["--batch-size", "two"], "argument --batch-size: expected a positive int; received 'two'"),
    (["--learning-rate", "0"], "argument --learning-rate: expected a finite positive number; received '0'"),
    (["--cell", "rnn"], "argument --cell: invalid choice: 'rnn'"),
    (["--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    (["--clipnorm", "1", "--clipvalue", "1"], "argument --clipvalue: not allowed with argument --clipnorm"),
    (["--out", "model.h5"], "argument --out: expected a path ending in .keras; received 'model.h5'"),
    (["--set", "no-equals-sign"], "argument --set: expected KEY=VALUE"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
]


@pytest.mark.parametrize("argv, says", BAD_COMMON_FLAGS, ids=[a[0] for a, _ in BAD_COMMON_FLAGS])
@pytest.mark.parametrize("name", ALL)
def test_a_bad_common_flag_exits_2_naming_the_option(name, argv, says, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module(name).main(argv)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    last = error.splitlines()[-1]  # argparse: the usage, then one "prog: error: ..." line; no trace
    assert f"python -m recipes.{name}: error: " in last and says in last and "Traceback" not in error


@pytest.mark.parametrize("name", ALL)
def test_an_unknown_set_key_is_a_usage_error_naming_it(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        module(name).main(["--preset", "tiny", "--set", "no_such_field=1"])
    assert exit_info.value.code == 2
    assert "no_such_field" in capsys.readouterr().err


# --- the Config ----------------------------------------------------------------
# (field, a bad value, the exception, what its message says): each of TrainingConfig's checks.
BAD_FIELDS = [
    ("cell", "rnn", ValueError, "Argument `cell` must be one of ['gru', 'lstm', 'simple_rnn']; received 'rnn'."),
    ("units", 0, ValueError, "Argument `units` must be a positive int; received 0."),
    ("units", 2.5, TypeError, "Argument `units` must be a positive int; received 2.5 of type float."),
    ("builtin", "yes", TypeError, "Argument `builtin` must be True or False; received 'yes'."),
    ("epochs", 0, ValueError, "Argument `epochs` must be a positive int; received 0."),
    ("batch_size", -1, ValueError, "Argument `batch_size` must be a positive int; received -1."),
    ("learning_rate", 0.0, ValueError, "Argument `learning_rate` must be a finite float > 0; received 0.0."),
    (
        "learning_rate",
        "fast",
        TypeError,
        "Argument `learning_rate` must be a finite float > 0; received 'fast' of type",
    ),
    ("clipnorm", -1.0, ValueError, "Argument `clipnorm` must be None or a finite float > 0; received -1.0."),
    ("clipvalue", float("inf"), ValueError, "Argument `clipvalue` must be None or a finite float > 0; received inf."),
    ("patience", 0, ValueError, "Argument `patience` must be a positive int; received 0."),
    ("seed", 1.5, TypeError, "Argument `seed` must be an int; received 1.5 of type float."),
    ("dropout", 1.5, ValueError, "Argument `dropout` must be a float in [0, 1); received 1.5."),
    ("recurrent_dropout", -0.1, ValueError, "Argument `recurrent_dropout` must be a float in [0, 1); received -0.1."),
    (
        "recurrent_kernel_dropout",
        1.0,
        ValueError,
        "Argument `recurrent_kernel_dropout` must be a float in [0, 1); received 1.0.",
    ),
    ("kernel_l2", -1.0, ValueError, "Argument `kernel_l2` must be a number >= 0; received -1.0."),
]


@pytest.mark.parametrize("field, value, error, says", BAD_FIELDS, ids=[f"{f}={v!r}" for f, v, _, _ in BAD_FIELDS])
@pytest.mark.parametrize("name", TRAINING)
def test_a_bad_config_value_names_the_field(name, field, value, error, says):
    recipe = module(name)
    assert issubclass(recipe.Config, TrainingConfig)
    with pytest.raises(error) as raised:
        config_from_preset(recipe.Config, recipe.PRESETS, "tiny", settings={field: value})
    assert says in str(raised.value)


@pytest.mark.parametrize("name", TRAINING)
def test_both_clipping_thresholds_at_once_are_refused(name):
    recipe = module(name)
    with pytest.raises(ValueError, match="Pass one of `clipnorm` and `clipvalue`, not both; received clipnorm=1.0"):
        config_from_preset(recipe.Config, recipe.PRESETS, "tiny", {"clipnorm": 1.0, "clipvalue": 1.0})


@pytest.mark.parametrize("name", TRAINING)
def test_numbers_are_stored_as_the_floats_they_mean(name):
    recipe = module(name)
    config = config_from_preset(recipe.Config, recipe.PRESETS, "tiny", {"clipnorm": 1, "learning_rate": 1})
    assert (type(config.clipnorm), type(config.learning_rate)) == (float, float)  # as config.json records them


@pytest.mark.parametrize("name", sorted(recipes.TRAINABLE))
def test_the_recipe_contract_describes_the_module(name):
    recipe = module(name).RECIPE
    assert recipe.name == name and recipe.config_class is module(name).Config
    assert recipe.presets is module(name).PRESETS and {"tiny", "default"} <= set(recipe.presets)


# --- --out: the saved file predicts what the trained model predicted ---------------
FRESH_PROCESS = textwrap.dedent(
    """
    import importlib, pickle, sys
    import keras
    importlib.import_module("recipes." + sys.argv[1])  # registers the recipe's own layers, if any
    model = keras.saving.load_model(sys.argv[2])
    with open(sys.argv[3], "rb") as file:
        x = pickle.load(file)
    with open(sys.argv[4], "wb") as file:
        pickle.dump(keras.tree.map_structure(lambda a: keras.ops.convert_to_numpy(a), model(x, training=False)), file)
    """
)


def _first_inputs(recipe, config, model):
    """Some validation inputs of the recipe, as NumPy (the x of its validation data)."""
    validation = recipe.fit_arguments(config, model, recipe.load_data(config))["validation_data"]
    x = validation[0] if isinstance(validation, tuple) else next(iter(validation))[0]
    x = keras.tree.map_structure(lambda a: np.asarray(a)[:8], x)
    return x


# Three recipes (one per kind of input: bits, text, characters) in the default
# run; the rest, each 20-40 s of training and a fresh process, with the slow tests.
ROUND_TRIP_BY_DEFAULT = ("char_lm", "parity", "sentiment")


@pytest.mark.parametrize(
    "name",
    [n if n in ROUND_TRIP_BY_DEFAULT else pytest.param(n, marks=pytest.mark.slow) for n in sorted(recipes.TRAINABLE)],
)
def test_out_saves_the_trained_model_and_a_fresh_process_predicts_the_same(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the PNGs some recipes write by default land here
    saved = {}
    original_save = model_files.save_model

    def spy(model, path, *args, **kwargs):  # the model object --out saves
        saved[str(path)] = model
        return original_save(model, path, *args, **kwargs)

    monkeypatch.setattr(model_files, "save_model", spy)
    path = str(tmp_path / f"{name}.keras")
    cli.main(["train", name, "--preset", "tiny", "--epochs", "1", "--out", path])  # recorded in runs/NAME
    model = saved[path]
    assert model_files.read_record(path)[0]["recipe"] == name  # keras.saving.load_model ignores the record
    assert list((tmp_path / "runs" / name).glob("*/metrics.csv")), "the run directory recorded no fit"
    recipe = module(name).RECIPE
    x = _first_inputs(recipe, recipe.config("tiny", epochs=1), model)
    expected = keras.tree.map_structure(keras.ops.convert_to_numpy, model(x, training=False))
    (tmp_path / "x.pickle").write_bytes(pickle.dumps(x))
    subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, name, path, str(tmp_path / "x.pickle"), str(tmp_path / "y.pickle")],
        check=True,
        timeout=300,
    )
    served = pickle.loads((tmp_path / "y.pickle").read_bytes())
    for got, want in zip(keras.tree.flatten(served), keras.tree.flatten(expected)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# --- layering: the library never depends on its applications -----------------------
LAYERING = textwrap.dedent(
    """
    import importlib, pkgutil, sys
    # The optional tools, hidden even where this machine has them: every library
    # module must import without them (CI's fresh environment has none of them).
    OPTIONAL = {"torch", "jax", "onnxruntime", "tf2onnx", "onnx", "ai_edge_litert", "tf_keras"}

    class HideOptional:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in OPTIONAL:
                raise ModuleNotFoundError(f"No module named {name!r} (hidden by the test)")

    sys.meta_path.insert(0, HideOptional())
    import keras_rnn_lab
    after_import = sorted({m.split(".")[0] for m in sys.modules} & {"recipes", "tuning", "tensorflow_datasets"})
    assert not after_import, f"import keras_rnn_lab loaded {after_import}"
    for info in pkgutil.walk_packages(keras_rnn_lab.__path__, "keras_rnn_lab."):
        if not info.name.endswith("__main__"):  # `python -m` entry points run their command
            importlib.import_module(info.name)
    after_all = sorted({m.split(".")[0] for m in sys.modules} & {"recipes", "tuning"})
    assert not after_all, f"importing every library module loaded {after_all}"
    print("ok")
    """
)


def test_the_library_imports_neither_recipes_tuning_nor_tfds():
    done = subprocess.run([sys.executable, "-c", LAYERING], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
