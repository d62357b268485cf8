"""captioning's decoding: `Captioner` writes captions with a trained model,
stepping its decoder's own layers (greedy or beam search,
`keras_rnn_lab.decoding`), and the SavedModel endpoints serve the same
search inside the graph, in the words saved with the model; `evaluate`
scores captions (exact match and BLEU-4)."""

import keras
import numpy as np
import tensorflow as tf

from keras_rnn_lab._validation import check_positive_int
from keras_rnn_lab.data.captions import END, PAD, START, Vocabulary, tokenize
from keras_rnn_lab.decoding import decode, tokens_to_text
from keras_rnn_lab.decoding.stepping import attention_readout, cell_step
from keras_rnn_lab.diagnostics.bleu import bleu_scores
from keras_rnn_lab.serving import export, numeric

EVALUATION_BATCH_SIZE = 500  # decoding keeps no activations: big batches are cheap
SERVED_MAX_WORDS = 16  # the longest caption a served model writes (shapes-world captions have at most 11 words)


class Captioner:
    """Writes captions with a trained captioning model, stepping its decoder cell by hand.

        captioner = Captioner(model)
        tokens, lengths = captioner(images, max_length=11)                 # greedy
        tokens, lengths = captioner(images, max_length=11, beam_width=3)   # beam search

    The encoder runs once per image; each step embeds the previous word, runs the
    decoder layer's own cell (same weights as in training) and, with attention,
    the same attention and output layers.
    """

    def __init__(self, model):
        self.model = model
        layer_names = {layer.name for layer in model.layers}
        needed = {"image", "embedding", "decoder", "logits", "initial_h"}
        if not needed <= layer_names:
            raise ValueError(
                f"Argument `model` must be a model from `build_model`; it lacks layers {sorted(needed - layer_names)}."
            )
        self.attention = "attention" in layer_names
        self.vocabulary = model_vocabulary(model)
        outputs = [model.get_layer("initial_h").output]
        if "initial_c" in layer_names:
            outputs.append(model.get_layer("initial_c").output)
        readout = None
        if self.attention:
            readout = attention_readout(model.get_layer("attention"), model.get_layer("attention_output"))
            outputs += [model.get_layer("features").output, model.get_layer("attention_keys").output]
        self.encoder = keras.Model(model.get_layer("image").output, outputs, name="encoder")
        # One decoder step, tokens (batch,) -> (log_probs (batch, vocabulary), new states).
        self.step = cell_step(
            model.get_layer("embedding"), model.get_layer("decoder").cell, model.get_layer("logits"), readout
        )

    def encode(self, images):
        """(states, constants) of the decoder's first step for `images`."""
        outputs = self.encoder(images, training=False)
        outputs = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]  # one output comes bare
        if not self.attention:
            return outputs, None
        return outputs[:-2], tuple(outputs[-2:])  # constants: features (values) and keys

    def __call__(self, images, max_length, beam_width=1, length_penalty=0.0, batch_size=EVALUATION_BATCH_SIZE):
        """(tokens (n, max_length) int32, lengths (n,) int32); beam_width 1 is greedy decoding."""
        beam_width = check_positive_int("beam_width", beam_width)
        tokens, lengths = [], []
        for begin in range(0, len(images), batch_size):
            states, constants = self.encode(images[begin : begin + batch_size])
            out, length = decode(self.step, states, START, END, max_length, beam_width, constants, length_penalty)
            tokens.append(out.numpy())
            lengths.append(length.numpy())
        return np.concatenate(tokens), np.concatenate(lengths)


def model_vocabulary(model):
    """The `Vocabulary` a captioning model writes in: the one saved in it, or for a
    model saved before models held theirs, the shapes world's."""
    names = {layer.name for layer in model.layers}
    return Vocabulary(model.get_layer("vocabulary").words) if "vocabulary" in names else Vocabulary.shapes()


def serving_endpoints(model, vocabulary=None, beam_width=3, max_length=SERVED_MAX_WORDS):
    """SavedModel signatures (`keras_rnn_lab.serving.export`): "caption" (greedy) and
    "caption_beam" (`beam_width` beams), each image (batch, H, W, 3) uint8 ->
    caption (batch,) strings.  `vocabulary`: default the one saved in the model
    (`model_vocabulary`), so a model trained on a user's captions exports as it is."""
    vocabulary = vocabulary or model_vocabulary(model)
    outputs = int(model.get_layer("logits").output.shape[-1])
    if outputs != len(vocabulary):
        raise ValueError(
            f"Argument `vocabulary` has {len(vocabulary)} words but the model writes {outputs}: a model saved "
            "without its vocabulary (before models held theirs) needs that run's Vocabulary."
        )
    captioner = Captioner(model)
    words = tf.constant(vocabulary.words)
    image = model.get_layer("image").output

    def caption_with(width):
        def caption(image):
            states, constants = captioner.encode(image)
            tokens, lengths = decode(captioner.step, states, START, END, max_length, width, constants)
            return {"caption": tokens_to_text(tokens, lengths, words, skip=(END, PAD))}

        return export.Endpoint(caption, [tf.TensorSpec((None, *image.shape[1:]), image.dtype, name="image")])

    return {"caption": caption_with(1), "caption_beam": caption_with(beam_width)}


def numeric_endpoints(model, vocabulary=None, beam_width=3, max_length=SERVED_MAX_WORDS):
    """The TFLite and ONNX twins (`keras_rnn_lab.serving.numeric`): "caption_ids"
    (greedy) and "caption_beam_ids", each image (batch, H, W, 3) uint8 ->
    tokens (batch, max_length) int32, word ids (vocabulary.json), of which
    the first `lengths` (batch,) count; the end and padding words (end_id,
    pad_id) are not words of the caption.  The whole search is in the file."""
    vocabulary = vocabulary or model_vocabulary(model)
    serving_endpoints(model, vocabulary, beam_width, max_length)  # the same checks
    captioner = Captioner(model)
    image = model.get_layer("image").output
    words = [str(word) for word in vocabulary.words]
    assets = {numeric.VOCABULARY_FILE: words, numeric.TOKENIZER_FILE: {"end_id": END, "pad_id": PAD}}

    def caption_with(width):
        def caption_ids(image):
            states, constants = captioner.encode(image)
            tokens, lengths = decode(captioner.step, states, START, END, max_length, width, constants)
            return {"tokens": tokens, "lengths": lengths}

        spec = tf.TensorSpec((None, *image.shape[1:]), image.dtype, name="image")
        return export.Endpoint(caption_ids, [spec], assets)

    return {"caption_ids": caption_with(1), "caption_beam_ids": caption_with(beam_width)}


def caption_scores(references, predictions):
    """{"exact": share of predictions equal to one of their references (word for word),
    "bleu": corpus BLEU-4 of the predictions (0-1), "sacrebleu": sacreBLEU's (0-100, or
    None without the sacrebleu package; see keras_rnn_lab.diagnostics.bleu)}."""
    exact = np.mean([tokenize(p) in [tokenize(r) for r in refs] for p, refs in zip(predictions, references)])
    scores = bleu_scores([[tokenize(r) for r in refs] for refs in references], [tokenize(p) for p in predictions])
    return {"exact": float(exact), **scores}


def evaluate(captioner, caption_set, data, beam_width=1, length_penalty=0.0):
    """(predicted captions, scores) of `caption_set`."""
    tokens, _ = captioner(caption_set.images, data.max_words + 1, beam_width, length_penalty)
    predictions = [data.vocabulary.decode(row) for row in tokens]
    return predictions, caption_scores(caption_set.references, predictions)
