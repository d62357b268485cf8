"""Long-range memory tasks: the data mean what they say; short distances are learned."""

import json

import numpy as np
import pytest

from recipes import long_memory
from recipes.parts import long_memory_report


def test_distractor_label_is_the_first_token_and_nothing_after_it(rng):
    tokens, labels = long_memory.distractor_data(rng, 200, 30)
    assert tokens.shape == (200, 31)
    np.testing.assert_array_equal(tokens[:, 0], np.where(labels == 1, 2, 1))
    assert tokens[:, 1:].min() >= 3 and tokens[:, 1:].max() < long_memory.VOCABULARY_SIZE
    assert 0.4 < labels.mean() < 0.6


def test_adding_target_is_the_sum_of_the_two_marked_values(rng):
    inputs, targets = long_memory.adding_data(rng, 100, 20)
    values, markers = inputs[..., 0], inputs[..., 1]
    assert (markers.sum(axis=1) == 2).all()
    assert (markers[:, :10].sum(axis=1) == 1).all()  # one mark in each half
    np.testing.assert_allclose(targets[:, 0], (values * markers).sum(axis=1), rtol=1e-6)


def test_lstm_solves_a_short_distractor_and_simple_rnn_lecture_init_does_not_at_50():
    solved = long_memory.train(
        long_memory.config_for("tiny", cell="lstm", init="keras", forget_bias=3.0, length=10, epochs=6)
    )
    assert solved.accuracy >= 0.95
    chance = long_memory.train(long_memory.config_for("tiny", cell="simple_rnn", init="lecture", length=50, epochs=4))
    assert chance.accuracy < 0.7


def test_main_prints_the_table_writes_the_plot_and_the_log(tmp_path, capsys):
    plot, log = tmp_path / "acc.png", tmp_path / "runs.jsonl"
    records = long_memory.main(
        [
            "--preset",
            "tiny",
            "--lengths",
            "5",
            "--tasks",
            "distractor,adding",
            "--cells",
            "lstm",
            "--inits",
            "keras",
            "--forget-biases",
            "3",
            "--plot",
            str(plot),
            "--log",
            str(log),
        ]
    )
    assert [r["task"] for r in records] == ["distractor", "adding"]
    assert [json.loads(line)["label"] for line in log.read_text().splitlines()] == ["lstm fb3 keras"] * 2
    assert plot.read_bytes()[:4] == b"\x89PNG" and plot.stat().st_size > 5_000
    out = capsys.readouterr().out
    assert "lstm fb3 keras" in out and "L=5" in out


def test_bad_arguments_are_named(capsys):
    with pytest.raises(ValueError, match="`forget_bias` applies to the LSTM only; received cell='gru'"):
        long_memory.Config(cell="gru", forget_bias=1.0)
    with pytest.raises(ValueError, match="`task` must be one of"):
        long_memory.Config(task="copy")
    with pytest.raises(SystemExit):
        long_memory.main(["--lengths", "10,-5"])
    assert "expected comma-separated positive ints" in capsys.readouterr().err


def test_several_seeds_show_the_median_and_how_many_runs_solved():
    def run(label, seed, accuracy):
        return {"task": "distractor", "label": label, "length": 100, "seed": seed, "accuracy": accuracy}

    records = [run("simple_rnn lecture", s, a) for s, a in enumerate([0.55, 1.0, 1.0, 0.507, 0.506])]
    records += [run("lstm fb3 keras", s, 1.0) for s in range(5)]
    records.append(run("simple_rnn lecture", 0, 0.50))  # a rerun of seed 0 replaces the first
    table = long_memory_report.format_table(records, long_memory.TASKS, long_memory.SOLVED_BAR)
    row = next(line for line in table.splitlines() if line.startswith("simple_rnn lecture"))
    assert row.split()[-2:] == ["50.7%", "2/5"]  # median of 0.50, 1.0, 1.0, 0.507, 0.506
    assert next(line for line in table.splitlines() if line.startswith("lstm fb3")).split()[-2:] == ["100.0%", "5/5"]


def test_seeds_run_every_configuration_once_per_seed(tmp_path):
    records = long_memory.main(
        [
            "--preset",
            "tiny",
            "--lengths",
            "5",
            "--cells",
            "gru",
            "--inits",
            "keras",
            "--seeds",
            "3,4",
            "--epochs",
            "1",
            "--plot",
            str(tmp_path / "p.png"),
        ]
    )
    assert [(r["label"], r["seed"]) for r in records] == [("gru keras", 3), ("gru keras", 4)]
    with pytest.raises(SystemExit):
        long_memory.main(["--seeds", "0,-1"])
