"""Exploding gradients: the unclipped run goes non-finite and stops; the clipped one trains."""

import dataclasses
import math

import numpy as np

from recipes import exploding_gradients


def test_unclipped_run_diverges_and_stops_clipped_run_trains():
    config = exploding_gradients.config_from_preset(exploding_gradients.Config, exploding_gradients.PRESETS, "tiny")
    plain = exploding_gradients.train(config)
    assert not math.isfinite(plain["loss"][-1])  # NaN or inf ...
    assert len(plain["loss"]) == 1 < config.epochs  # ... and TerminateOnNaN ended the run in its first epoch
    clipped = exploding_gradients.train(dataclasses.replace(config, clipnorm=1.0))
    assert len(clipped["loss"]) == config.epochs
    assert all(math.isfinite(v) for v in clipped["loss"] + clipped["val_loss"])
    assert clipped["loss"][-1] < clipped["loss"][0] / 1e3  # from the first batches' explosion to a sane loss
    assert clipped["val_loss"][-1] < 1.0


def test_data_targets_are_the_scaled_sums():
    config = exploding_gradients.Config(train_size=5, validation_size=3, steps=7)
    data = exploding_gradients.load_data(config)
    x, y = data["train"]
    assert x.shape == (5, 7, 1) and data["validation"][0].shape == (3, 7, 1)
    np.testing.assert_allclose(y[:, 0], x[:, :, 0].sum(axis=1) / np.sqrt(7), rtol=1e-6)
    assert x.min() >= -1 and x.max() < 1


def test_main_prints_both_runs(capsys):
    exploding_gradients.main(["--preset", "tiny", "--clipvalue", "0.5"])
    out = capsys.readouterr().out
    assert "no clipping" in out and "stopped by TerminateOnNaN" in out and "clipvalue 0.5" in out
