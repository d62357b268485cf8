"""Looking inside training: the BPTT gradient probe (`gradient_probe`), model
capacity against data (`capacity`), translation scores (`bleu`), teacher-forced
perplexity and its unigram baseline (`perplexity`) and forecast baselines and
errors (`forecasting`)."""
