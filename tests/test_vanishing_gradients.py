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


@pytest.mark.slow
def test_lecture_demo_acceptance(tmp_path):
    """128 steps, N(0, 0.1): SimpleRNN < 1e-6; LSTM (b = 1) >= 1e6 x SimpleRNN; b >= 3 > 1e-2."""
    config = vanishing_gradients.Config(forget_biases=(1.0, 2.0, 3.0, 4.0))
    cells, sweep = vanishing_gradients.train(config)
    ratio = {m.name: m.ratio() for m in cells + sweep}
    assert ratio["simple_rnn"] < 1e-6
    assert ratio["lstm"] >= 1e6 * ratio["simple_rnn"]
    assert all(ratio[f"lstm b={b}"] > 1e-2 for b in (3, 4))
    inputs = {m.name: m.ratio(m.input_norms) for m in sweep}
    assert inputs["lstm b=2"] > 1e-2  # for dL/dx; dL/dh at b = 2 measured 5e-3
