"""The keras-rnn-lab command: it lists, dispatches to the recipes, and says what is wrong."""

import os
import subprocess
import sys

import pytest

import recipes
from keras_rnn_lab import cli


def test_list_names_every_recipe_module_with_its_topology(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    recipes_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(cli.__file__))), "recipes")
    modules = sorted(f[:-3] for f in os.listdir(recipes_dir) if f.endswith(".py") and not f.startswith("_"))
    assert sorted(recipes.CATALOGUE) == modules  # nothing missing, nothing invented
    for name, (topology, _) in recipes.CATALOGUE.items():
        assert any(line.startswith(name) and topology in line for line in out.splitlines())


def test_trainable_names_exactly_the_recipes_that_define_a_recipe_contract():
    import importlib

    defined = sorted(
        name for name in recipes.CATALOGUE if hasattr(importlib.import_module(f"recipes.{name}"), "RECIPE")
    )
    assert defined == sorted(recipes.TRAINABLE)


def test_train_runs_the_recipe_with_its_flags_and_set_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    results = cli.main(
        [
            "train",
            "parity",
            "--preset",
            "tiny",
            "--epochs",
            "1",
            "--set",
            "embedding_dim=4",
            "--set",
            "train_lengths=(1, 4)",
        ]
    )
    [result] = results
    assert result.config.embedding_dim == 4 and result.config.train_lengths == (1, 4) and result.config.epochs == 1
    assert len(result.history["loss"]) == 1
    assert (tmp_path / "runs" / "parity" / "config.json").exists()  # every command-line run records itself


def test_flags_win_over_set_values(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [result] = cli.main(["train", "parity", "--preset", "tiny", "--epochs", "1", "--set", "epochs=3"])
    assert result.config.epochs == 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "nosuch"], "invalid choice: 'nosuch' (choose from 'captioning', 'char_lm'"),
        (["train", "parity", "--preset", "huge"], "invalid choice: 'huge' (choose from 'default', 'tiny')"),
        (
            ["train", "parity", "--preset", "tiny", "--set", "colour=red"],
            "Unknown Config fields ['colour']; expected some of",
        ),
        (["train", "parity", "--set", "=3"], "expected KEY=VALUE"),
        (["export", "nosuch"], "invalid choice: 'nosuch'"),
    ],
)
def test_bad_names_are_one_line_usage_errors(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 2
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(error_lines) == 1 and message in error_lines[0]


def test_the_console_script_is_installed():
    script = os.path.join(os.path.dirname(sys.executable), "keras-rnn-lab")
    done = subprocess.run([script, "list"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "translation" in done.stdout


# long_memory's command sweeps a grid of runs; one cell at one length keeps it to seconds.
NARROW = {"long_memory": ["--tasks", "distractor", "--lengths", "10", "--cells", "gru"]}


# The trainable recipes run through the command in test_recipe_contract.py (with --out).
@pytest.mark.parametrize("name", sorted(set(recipes.CATALOGUE) - set(recipes.TRAINABLE)))
def test_every_other_recipe_runs_its_tiny_preset_through_the_command(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the PNGs some recipes write by default land here
    assert cli.main(["train", name, "--preset", "tiny", *NARROW.get(name, [])]) is not None


def test_evaluate_scores_a_saved_model_on_the_validation_split(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    [result] = cli.main(["train", "parity", "--preset", "tiny", "--out", "parity.keras"])
    scores = cli.main(["evaluate", "parity", "--model", "parity.keras", "--preset", "tiny"])
    assert scores["accuracy"] == pytest.approx(result.accuracy["validation"], abs=1e-6)
    assert "accuracy:" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["evaluate", "parity", "--model", "missing.keras"])
    assert exit_info.value.code == 2
