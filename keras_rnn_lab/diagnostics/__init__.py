"""Looking inside training: the BPTT gradient probe (`gradient_probe`), model
capacity against data (`capacity`) and translation scores (`bleu`)."""
