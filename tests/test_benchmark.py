"""The benchmark command: it runs, times every candidate and reports ratios."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab import benchmark
from keras_rnn_lab.benchmark import candidates, matmuls_only, timing, torch_peer
from keras_rnn_lab.layers.bptt import loop
from keras_rnn_lab.layers.compiled import build


def _round_ratio_stats(reference_ms, candidate_ms):
    ratios = np.array(reference_ms) / np.array(candidate_ms)
    return pytest.approx(float(np.median(ratios))), pytest.approx([ratios.min(), ratios.max()])


def _check_rows(rows, reference):
    """Each ratio to `reference` is the median, min and max over rounds of that round's ratio."""
    for row in rows:
        base = next(r for r in rows if r["cell"] == row["cell"] and r["candidate"] == reference)
        key = "speedup" if reference == "keras built-in" else "vs_torch"
        for mode in ("train", "infer"):
            assert len(row[f"{mode}_rounds_ms"]) == 2 and row[f"{mode}_ms"] == pytest.approx(
                np.median(row[f"{mode}_rounds_ms"])
            )
            median, spread = _round_ratio_stats(base[f"{mode}_rounds_ms"], row[f"{mode}_rounds_ms"])
            assert row[f"{mode}_{key}"] == median and row[f"{mode}_{key}_range"] == spread


# Ours twice where the compiled kernels could be built: on them, and on TensorFlow ops.
KERAS_CANDIDATES = ["keras built-in", "RNN(our cell)", "keras_rnn_lab"]
KERAS_CANDIDATES += [candidates.TF_OPS] if build.load()[1] is None else []
KERAS_CANDIDATES += ["matmuls only"]


def test_runs_a_tiny_shape_and_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    args = ["--cells", "gru,simple_rnn", "--shapes", "4x3x2x5", "--repeats", "2", "--no-model", "--no-torch"]
    assert benchmark.main(args + ["--json", str(path)]) == 0
    rows = json.loads(path.read_text())
    assert [(r["cell"], r["candidate"]) for r in rows] == [
        (cell, candidate) for cell in ("gru", "simple_rnn") for candidate in KERAS_CANDIDATES
    ]
    assert all(r["train_ms"] > 0 and r["infer_ms"] > 0 and r["train_vs_torch"] is None for r in rows)
    _check_rows(rows, "keras built-in")
    printed = capsys.readouterr().out
    assert "x built-in" in printed and "keras_rnn_lab" in printed and "torch: not timed" in printed


needs_torch = pytest.mark.skipif(not torch_peer.torch_available(), reason="torch is not installed (optional peer)")


@needs_torch
def test_torch_joins_every_round_from_its_own_process(tmp_path, capsys):
    path = tmp_path / "bench.json"
    args = ["--cells", "lstm", "--shapes", "4x3x2x5", "--repeats", "2", "--no-model", "--json", str(path)]
    assert benchmark.main(args) == 0
    rows = json.loads(path.read_text())
    expected = [*KERAS_CANDIDATES, "torch"]
    assert [r["candidate"] for r in rows] == expected
    _check_rows(rows, "keras built-in")
    _check_rows(rows, "torch")
    assert "in its own process" in capsys.readouterr().out


@needs_torch
def test_the_torch_worker_times_torch_without_tensorflow_in_its_process():
    rng = np.random.default_rng(0)
    with torch_peer.TorchPeer(spin_seconds=0.0) as peer:
        reply = peer.setup("gru", rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 5)))
        seconds = [peer.timer(mode).seconds() for mode in ("train", "infer")]
        with open(f"/proc/{peer.process.pid}/maps") as maps:
            libraries = maps.read()
        with pytest.raises(RuntimeError, match="the PyTorch worker failed: KeyError: 'transformer'"):
            peer.setup("transformer", rng.normal(size=(4, 3, 2)), rng.normal(size=(4, 5)))
    assert reply["threads"] >= 1 and all(0 < s < 10 for s in seconds)
    assert "libtorch" in libraries and "tensorflow" not in libraries
    assert peer.process.returncode == 0


def test_rounds_interleave_self_timed_candidates_and_pause_after_them(monkeypatch):
    calls, slept = [], []
    monkeypatch.setattr(timing.time, "sleep", slept.append)
    candidates = {
        "a": lambda: calls.append("a"),
        "peer": timing.SelfTimed(lambda: calls.append("peer") or 0.25, pause=0.5),
    }
    samples = timing.interleaved_samples(candidates, repeats=3, warmup=1)
    assert calls == ["a", "peer"] + ["a", "peer"] * 3  # warm-up, then a, peer in every round
    assert samples["peer"] == [0.25] * 3 and len(samples["a"]) == 3 and slept == [0.5] * 4


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
    # built-in, RNN(our cell), ours (and ours on TensorFlow ops beside the compiled kernels)
    assert printed.count("ms wall per training step") == len(KERAS_CANDIDATES) - 1
    assert "MatMul" in printed
