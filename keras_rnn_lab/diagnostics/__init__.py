"""Looking inside training: the BPTT gradient probe (`gradient_probe`), model
capacity against data (`capacity`), translation scores (`bleu`) and forecast
baselines and errors (`forecasting`)."""
