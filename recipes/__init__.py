"""Recipes, each runnable as `python -m recipes.NAME` (and `keras-rnn-lab train NAME`):

char_lm              many-to-many: character language model and text generation
parity               many-to-one: is the number of 1s even, at any length
sentiment            many-to-one: review snippets -> fresh or rotten
forecast             many-to-many: the next value of a real series
tagging              many-to-many: a weather label for every day
video_frames         many-to-many: a label for every frame of moving digits
translation          many-to-many, encoder-decoder: English -> French number words
captioning           one-to-many: image -> caption in a shapes world
vanishing_gradients  BPTT: the lecture's gradient-norm-against-distance demo
long_memory          many-to-one: distractor and adding tasks over growing lengths
exploding_gradients  many-to-one: divergence without clipping, training with it
"""
