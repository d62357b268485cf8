"""The benchmark command: it runs, times every candidate and reports ratios."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab import benchmark
from keras_rnn_lab.benchmark import matmuls_only, timing
from keras_rnn_lab.layers.bptt import loop


def test_runs_a_tiny_shape_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    args = ["--cells", "gru,simple_rnn", "--shapes", "4x3x2x5", "--repeats", "2", "--no-model", "--no-torch"]
    assert benchmark.main(args + ["--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert [(r["cell"], r["candidate"]) for r in rows] == [
        (cell, candidate)
        for cell in ("gru", "simple_rnn")
        for candidate in ("keras built-in", "RNN(our cell)", "keras_rnn_lab", "matmuls only")
    ]
    for row in rows:
        assert row["train_ms"] > 0 and row["infer_ms"] > 0
        # speed-up = built-in median / candidate median
        builtin = next(r for r in rows if r["cell"] == row["cell"] and r["candidate"] == "keras built-in")
        assert row["train_speedup"] == pytest.approx(builtin["train_ms"] / row["train_ms"])
        assert row["infer_speedup"] == pytest.approx(builtin["infer_ms"] / row["infer_ms"])
    printed = capsys.readouterr().out
    assert "x built-in" in printed and "keras_rnn_lab" in printed


@pytest.mark.parametrize("gates", [1, 3])
def test_matmuls_only_row_is_the_bptt_of_its_linear_recurrence(gates, monkeypatch):
    """The row times a real BPTT: its dU, dW equal autodiff of the same recurrence."""
    monkeypatch.setattr(loop, "SPLIT_MIN_PRODUCT", 0)  # the two-core split, as at the benchmark's sizes
    rng = np.random.default_rng(0)
    steps, batch, features, units = 5, 3, 4, 128
    x = tf.constant(rng.normal(size=(steps, batch, features)), "float32")
    kernel = tf.Variable(rng.normal(scale=0.3, size=(features, gates * units)).astype("float32"))
    recurrent_kernel = tf.Variable(rng.normal(scale=0.05, size=(units, gates * units)).astype("float32"))
    d_last = tf.constant(rng.normal(size=(batch, units)), "float32")
    with tf.GradientTape() as tape:
        states = matmuls_only.linear_recurrence(x, kernel, recurrent_kernel, gates)
        loss = tf.reduce_sum(states[-1] * d_last)
    expected = tape.gradient(loss, [kernel, recurrent_kernel])
    got = matmuls_only.linear_recurrence_gradients(x, states, recurrent_kernel, gates, d_last)
    for mine, theirs in zip(got, expected):
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-4)


def test_interleaved_medians_are_medians():
    clock = iter([0.0, 0.001, 0.0, 0.005, 0.0, 0.003])
    timings = {"a": lambda: None}
    original = timing.time.perf_counter
    timing.time.perf_counter = lambda: next(clock)
    try:
        medians = timing.interleaved_medians(timings, repeats=3, warmup=0)
    finally:
        timing.time.perf_counter = original
    assert medians == {"a": pytest.approx(0.003)}


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--cells", "lstm,transformer"], "--cells"),
        (["--shapes", "huge"], "--shapes"),
        (["--shapes", "4x3x0x5"], "--shapes"),
        (["--repeats", "0"], "--repeats"),
    ],
)
def test_bad_arguments_are_named(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        benchmark.main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_generation_timing_runs_both_ways(tmp_path, capsys):
    path = tmp_path / "gen.json"
    args = [
        "--generation",
        "--generation-length",
        "5",
        "--generation-units",
        "8",
        "--repeats",
        "2",
        "--json",
        str(path),
    ]
    assert benchmark.main(args) == 0
    timings = json.loads(path.read_text())
    assert set(timings) == {"compiled loop", "model.predict on the prefix"}
    assert all(seconds > 0 for seconds in timings.values())
    assert "x the compiled loop's time" in capsys.readouterr().out


def test_profile_reports_kernel_time(capsys):
    assert benchmark.main(["--profile", "--cells", "lstm", "--shapes", "4x3x2x5"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("ms wall per training step") == 3  # built-in, RNN(our cell), ours
    assert "MatMul" in printed
