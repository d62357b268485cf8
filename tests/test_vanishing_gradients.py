"""The vanishing-gradient demo: ratios in the lecture's order, PNGs written."""

import numpy as np
import pytest

from recipes import vanishing_gradients


def test_tiny_demo_orders_the_cells_and_writes_both_pngs(tmp_path, capsys):
    heatmap, curves = tmp_path / "heat.png", tmp_path / "curves.png"
    cells, sweep = vanishing_gradients.main(["--preset", "tiny", "--heatmap", str(heatmap), "--curves", str(curves)])
    for path in (heatmap, curves):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000
    ratio = {m.name: m.ratio() for m in cells}
    assert ratio["simple_rnn"] < ratio["gru"] < ratio["lstm"]
    # The forget-gate sweep: a larger bias keeps more of the error.
    assert sweep[0].name == "lstm b=1" and sweep[0].ratio() < sweep[1].ratio()
    assert sweep[0].ratio() == pytest.approx(ratio["lstm"])  # Keras's unit_forget_bias is b = 1
    assert "simple_rnn" in capsys.readouterr().out
    heat = cells[0].heat
    assert heat.shape == (32, 8) and np.all(heat[-1] > heat[0])


def test_training_flags_are_refused():
    with pytest.raises(SystemExit):
        vanishing_gradients.main(["--preset", "tiny", "--epochs", "3"])
    with pytest.raises(ValueError, match="`cells` must be some of"):
        vanishing_gradients.Config(cells=("lstm", "rnn"))


def _measurement(name, input_ratio, state_ratio, forget_bias=None):
    """A Measurement whose distance-127/distance-0 ratios are the given ones."""
    norms = lambda ratio: np.array([ratio, 0.5, 1.0])  # noqa: E731  (first step / last step = ratio)
    return vanishing_gradients.Measurement(
        name, norms(state_ratio), norms(input_ratio), np.ones(3), np.ones((3, 2)), forget_bias
    )


def test_lecture_claims_are_checked_per_gradient():
    cells = [_measurement("simple_rnn", 1e-30, 1e-7), _measurement("lstm", 1e-20, 1e-2)]
    sweep = [_measurement("lstm b=1", 1e-20, 1e-2, 1.0), _measurement("lstm b=2", 0.5, 5e-3, 2.0)]
    claims = {(c.gradient, c.text): c for c in vanishing_gradients.lecture_claims(cells, sweep)}
    assert claims["dL/dx", "SimpleRNN: ratio below 1e-6"].holds
    assert claims["dL/dx", "LSTM b=1: ratio >= 1e6 x SimpleRNN's"].value == pytest.approx(1e10)
    assert claims["dL/dx", "lstm b=2: ratio above 1e-2"].holds
    assert not claims["dL/dh", "lstm b=2: ratio above 1e-2"].holds  # 5e-3
    assert not claims["dL/dh", "LSTM b=1: ratio >= 1e6 x SimpleRNN's"].holds  # 1e5 x
    assert len(claims) == 6  # b = 1 is not held to the 1e-2 bar
    assert "DOES NOT HOLD" in vanishing_gradients.format_claims(list(claims.values()))


@pytest.mark.slow
def test_lecture_demo_acceptance(tmp_path):
    """128 steps, N(0, 0.1): SimpleRNN < 1e-6; LSTM (b = 1) >= 1e6 x SimpleRNN; b >= 2 > 1e-2,
    for the input gradient (the probe's first quantity).  The state gradient at b = 2,
    seed 0, measured 4.9e-3: it misses that bar, and the recipe prints so."""
    config = vanishing_gradients.Config(forget_biases=(1.0, 2.0, 3.0, 4.0))
    cells, sweep = vanishing_gradients.train(config)
    claims = vanishing_gradients.lecture_claims(cells, sweep)
    assert all(c.holds for c in claims if c.gradient == "dL/dx"), vanishing_gradients.format_claims(claims)
    state_claims = [c for c in claims if c.gradient == "dL/dh" and c.text != "lstm b=2: ratio above 1e-2"]
    assert all(c.holds for c in state_claims), vanishing_gradients.format_claims(claims)
