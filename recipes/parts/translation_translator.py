"""translation's decoding: `Translator` steps the trained decoder's own layers
(greedy or beam search, `keras_rnn_lab.decoding`), the `translate` command
translates sentences with a saved model, and the export's endpoints serve
the same search (strings in the SavedModel, token ids in TFLite and ONNX)."""

import argparse
import importlib

import tensorflow as tf

from keras_rnn_lab import decoding
from keras_rnn_lab.data.sentence_pairs import END, START, TOKEN, graph_tokens, padded, tokenize
from keras_rnn_lab.decoding import tokens_to_text
from keras_rnn_lab.decoding.stepping import attention_readout, cell_step
from keras_rnn_lab.serving import export, numeric
from keras_rnn_lab.training import positive_int, program, usage_errors

SERVED_MAX_LENGTH = 64  # the longest translation a served model writes, in words


class Translator:
    """Greedy and beam-search translation with a trained (or reloaded) model's own layers.

    translator = Translator(model)
    translator(["one", "hundred"])                 # -> ["cent"]
    translator.translate_batch(sources, beam_width=4)
    """

    def __init__(self, model, max_length=None):
        self.model = model
        names = {layer.name for layer in model.layers}
        needed = {"source_lookup", "source_embedding", "target_lookup", "target_embedding", "decoder", "logits"}
        missing = sorted(needed - names)
        if missing:
            raise ValueError(
                f"Argument `model` must be a model from recipes.translation.build_model; it has no layers {missing}."
            )
        self.source_lookup = model.get_layer("source_lookup")
        self.source_embedding = model.get_layer("source_embedding")
        self.bidirectional = "bidirectional_encoder" in names
        self.encoder = model.get_layer("bidirectional_encoder" if self.bidirectional else "encoder")
        self.attention = "attention" in names
        self.target_vocabulary = model.get_layer("target_lookup").get_vocabulary()
        self.start, self.end = (self.target_vocabulary.index(token) for token in (START, END))
        self.max_length = max_length
        readout = None
        if self.attention:
            self.attention_keys = model.get_layer("attention_keys")
            attention, combine = model.get_layer("attention"), model.get_layer("attentional")
            readout = attention_readout(attention, combine, context_first=True)
        # One decoder step with the trained layers; padding (id 0) and [START] are never
        # emitted (the loss never asks for them).
        self.step = cell_step(
            model.get_layer("target_embedding"),
            model.get_layer("decoder").cell,
            model.get_layer("logits"),
            readout=readout,
            never=(0, self.start),
        )
        self._encode = tf.function(self.encode, reduce_retracing=True)

    def encode(self, source_ids):
        """source ids (batch, time) -> (decoder states, constants for the step)."""
        mask = tf.not_equal(source_ids, 0)
        encoded, *states = self.encoder(self.source_embedding(source_ids), mask=mask)
        if self.bidirectional:
            half = len(states) // 2
            states = [tf.concat([states[i], states[half + i]], axis=-1) for i in range(half)]
        constants = (encoded, self.attention_keys(encoded), mask) if self.attention else ()
        return states, constants

    def translate_ids(self, sources, beam_width=1, max_length=None, length_penalty=0.0):
        """token lists -> (tokens (batch, max_length) ids, lengths): one compiled search."""
        max_length = max_length or self.max_length or 2 * max(map(len, sources)) + 2
        source_words = tf.constant(padded(sources).astype(str))
        return self.search(source_words, beam_width, max_length, length_penalty)

    def search(self, source_words, beam_width, max_length, length_penalty=0.0):
        """(batch, time) source words, "" as padding -> (tokens, lengths) of the
        greedy (beam_width 1) or beam search; TensorFlow ops, so an export traces it."""
        states, constants = self._encode(self.source_lookup(source_words))
        return decoding.decode(
            self.step, states, self.start, self.end, max_length, beam_width, constants, length_penalty
        )

    def translate_batch(self, sources, beam_width=1, max_length=None, length_penalty=0.0, batch_size=500):
        """Token lists -> translated token lists (without [END])."""
        words = []
        for start in range(0, len(sources), batch_size):
            batch = sources[start : start + batch_size]
            tokens, lengths = self.translate_ids(batch, beam_width, max_length, length_penalty)
            for row, length in zip(tokens.numpy(), lengths.numpy()):
                row = row[:length]
                if length and row[-1] == self.end:
                    row = row[:-1]
                words.append([self.target_vocabulary[i] for i in row])
        return words

    def __call__(self, source, beam_width=1):
        """One sentence (text or token list) -> its translation as a token list."""
        tokens = tokenize(source) if isinstance(source, str) else list(source)
        return self.translate_batch([tokens], beam_width)[0]


def translate_command(argv):
    """`python -m recipes.translation translate --model M.keras SENTENCE...`: print and return the translations."""
    parser = argparse.ArgumentParser(
        prog=program("python -m recipes.translation translate"), description="Translate sentences with a saved model."
    )
    parser.add_argument("--model", required=True, help="a .keras file saved by training (--out)")
    parser.add_argument("--beam-width", dest="beam_width", type=positive_int, default=4, help="1 = greedy")
    parser.add_argument("sentences", nargs="+", help="sentences in the source language")
    args = parser.parse_args(argv)
    with usage_errors(parser):  # no such file, not a translation model: exit 2
        translator = Translator(importlib.import_module("recipes").find("translation").load_model(args.model))
    translations = translator.translate_batch([tokenize(s) for s in args.sentences], args.beam_width)
    for sentence, words in zip(args.sentences, translations):
        print(f"{sentence}\t{' '.join(words)}")
    return translations


def serving_endpoints(model, beam_width=4, max_length=SERVED_MAX_LENGTH):
    """SavedModel signatures (`keras_rnn_lab.serving.export`): "translate" (greedy) and
    "translate_beam" (`beam_width` beams), each text (batch,) raw source
    sentences -> translation (batch,) strings, words joined by spaces.
    Tokenizing, both lookups and the whole search run inside the graph."""
    translator = Translator(model, max_length=max_length)
    vocabulary = tf.constant(translator.target_vocabulary)

    def translate_with(width):
        def translate(text):
            tokens, lengths = translator.search(graph_tokens(text), width, max_length)  # (batch, max_length)
            return {"translation": tokens_to_text(tokens, lengths, vocabulary, skip=(translator.end,))}

        return export.Endpoint(translate, [tf.TensorSpec((None,), tf.string, name="text")])

    return {"translate": translate_with(1), "translate_beam": translate_with(beam_width)}


def numeric_endpoints(model, beam_width=4, max_length=SERVED_MAX_LENGTH):
    """The TFLite and ONNX twins (`keras_rnn_lab.serving.numeric`): "translate_ids"
    (greedy) and "translate_beam_ids", each source_ids (batch, time) int64, the
    source words' ids (source_vocabulary.json; 0 padding, 1 unknown; tokenizer.json:
    lower-case, then `token_pattern`'s matches) -> tokens (batch, max_length)
    int32, target ids (target_vocabulary.json), of which the first `lengths`
    (batch,) count, [END] (end_id) last.  The whole search is in the file."""
    translator = Translator(model, max_length=max_length)
    source_vocabulary = [str(word) for word in translator.source_lookup.get_vocabulary()]
    assets = {
        "source_vocabulary.json": source_vocabulary,
        "target_vocabulary.json": [str(word) for word in translator.target_vocabulary],
        numeric.TOKENIZER_FILE: {
            "lowercase": True,
            "token_pattern": TOKEN.pattern,
            "pad_id": 0,
            "oov_id": source_vocabulary.index("[UNK]"),
            "end_id": translator.end,
        },
    }

    def translate_with(width):
        def translate_ids(source_ids):
            states, constants = translator.encode(source_ids)
            tokens, lengths = decoding.decode(
                translator.step, states, translator.start, translator.end, max_length, width, constants
            )
            return {"tokens": tokens, "lengths": lengths}

        return export.Endpoint(translate_ids, [tf.TensorSpec((None, None), tf.int64, name="source_ids")], assets)

    return {"translate_ids": translate_with(1), "translate_beam_ids": translate_with(beam_width)}
