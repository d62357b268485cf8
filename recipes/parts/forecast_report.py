"""The forecast recipe's printed report: the test table, the scaler and a verdict."""

METHODS = ("model", "naive", "seasonal")


def format_report(result):
    """The test table, the training period's mean and std (the units every
    number and the saved model's forecasts are in) and a verdict: did the
    model beat the naive and seasonal forecasts?"""
    config, data, scores = result.config, result.data, result.scores["test"]
    test = data.periods["test"]
    first = test.start + max(data.lag + data.window, data.season)
    units = data.value_unit
    labels = {
        "model": f"{config.cell}{' (keras)' if config.builtin else ''} {config.units}, corrects {config.anchor}",
        "naive": f"naive (last {data.unit})",
        "seasonal": f"seasonal ({data.season} {data.unit}s back)",
    }
    lines = [
        f"{data.name}: test targets {data.series.times[first]} .. {data.series.times[test.stop - 1]} "
        f"({result.targets['test']} {data.unit}s, {units}); "
        f"{len(result.history['loss'])} epochs, {result.seconds:.0f} s",
        f"{'method':<34} {'RMSE':>8} {'MAE':>8}",
    ]
    lines += [f"{labels[m]:<34} {scores[m]['rmse']:>8.3f} {scores[m]['mae']:>8.3f}" for m in METHODS]
    for baseline in ("naive", "seasonal"):
        gain = 1 - scores["model"]["rmse"] / scores[baseline]["rmse"]
        verdict = "beats" if gain > 0 else "does NOT beat"
        change = f"{100 * abs(gain):.1f}% {'lower' if gain > 0 else 'higher'}"
        lines.append(f"The model {verdict} the {baseline} forecast: test RMSE {change}.")
    if config.dataset == "stocks" and scores["model"]["rmse"] >= scores["naive"]["rmse"]:
        lines.append("Monthly prices are close to a random walk: the last price is hard to improve on.")
    if result.targets["test"] < 20:
        lines.append(f"Only {result.targets['test']} test targets: a few months' luck, not a measurement.")
    mean, std = float(data.scaler.mean[0]), float(data.scaler.std[0])
    lines.append(
        f"Scaler (training period): mean {mean:.4f} {units}, std {std:.4f} {units}; "
        f"the saved model keeps both, so its export forecasts in {units}."
    )
    return "\n".join(lines)
