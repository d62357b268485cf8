"""Offline data, each reader named for what it reads:

    text_data       text corpora (the shipped files in `corpora/`, TFDS text datasets)
    labelled_text   labelled snippets (CSV files, the shipped reviews, TFDS) and stratified splits
    series_data     real time series (vega_datasets' files), split by time and standardized
    moving_digits   clips of handwritten digits moving on a canvas, a label per frame
    shapes_world    rendered images of coloured shapes and their captions
    captions        caption files, image folders and TFDS caption datasets
    sentence_pairs  sentence pairs for translation (TSV, trans-de-en, number words, TFDS)
    dialogues       prompt/reply pairs of the chatterbot-corpus package's YAML conversations
    tfds_local      TFDS datasets already prepared here (never downloads)

Nothing here downloads; tensorflow_datasets is imported only by the readers
that use it.
"""

import importlib.resources

# The files shipped inside the package (the sonnets, the review snippets).
CORPORA = importlib.resources.files(__name__) / "corpora"
