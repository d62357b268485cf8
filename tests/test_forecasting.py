"""The forecast baselines and scores (keras_rnn_lab.diagnostics.forecasting), by hand."""

import numpy as np
import pytest

from keras_rnn_lab.diagnostics import forecasting


def test_baselines_on_a_hand_series():
    values = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0])
    np.testing.assert_array_equal(forecasting.naive_forecast(values, start=2), [2, 4, 7, 11])  # targets 4, 7, 11, 16
    np.testing.assert_array_equal(forecasting.seasonal_forecast(values, season=3, start=3), [1, 2, 4])  # 7, 11, 16
    with pytest.raises(ValueError, match=r"`start` \(2\) must be at least `season` \(3\)"):
        forecasting.seasonal_forecast(values, season=3, start=2)
    with pytest.raises(ValueError, match=r"`start` \(0\) must be at least 1"):
        forecasting.naive_forecast(values, start=0)
    scores = forecasting.error_scores([7.0, 11.0, 16.0], [1.0, 2.0, 4.0])  # errors 6, 9, 12
    assert scores["mae"] == pytest.approx(9.0)
    assert scores["rmse"] == pytest.approx(np.sqrt((36 + 81 + 144) / 3))
