"""One step of a trained recurrent decoder: the `step_fn` of `search.greedy_decode`
and `search.beam_search`, made from the trained model's own layers.

A decoder trained with teacher forcing runs its recurrent layer over the whole
target at once; to write a sequence it is stepped one token at a time with the
same layers (so the same weights):

    embedded = embedding table[token]                     (batch, embedding_dim)
    output, states = cell(embedded, states)               (batch, units)
    output = readout(output, constants)                   optional, e.g. attention
    log_probs = log_softmax(output_layer(output))         (batch, vocabulary)

    step = cell_step(embedding, layer.cell, logits)
    step = cell_step(embedding, layer.cell, logits, readout=attention_readout(attention, combine))
    tokens, lengths = greedy_decode(step, states, start, end, max_length, constants)

Make the step once per model and reuse it: each search is traced once per step
function.  TensorFlow-only, like the searches.
"""

import numpy as np
import tensorflow as tf


def cell_step(embedding, cell, output_layer, readout=None, never=()):
    """step_fn(tokens, states, constants) -> (log_probs, new_states) of a trained decoder.

    embedding: the decoder's `keras.layers.Embedding`; its table is gathered
        directly, because the layer would attach a padding mask a cell cannot take.
    cell: the trained recurrent layer's cell (`layer.cell`), run with training=False.
    output_layer: the layer giving the logits over the vocabulary (a Dense).
    readout: None, or (cell output, constants) -> output_layer's input, e.g.
        `attention_readout`; constants are the search's (per-sequence encoder outputs).
    never: token ids never to emit (log probability -inf), e.g. padding and the
        start token when the loss never asked for them.
    """
    for name, layer in (("embedding", embedding), ("cell", cell), ("output_layer", output_layer)):
        if not callable(layer):
            raise TypeError(f"Argument `{name}` must be a Keras layer; received {layer!r}.")
    if not hasattr(embedding, "embeddings"):
        raise TypeError(f"Argument `embedding` must be a keras.layers.Embedding; received {embedding!r}.")
    blocked = None
    if never:
        size = getattr(output_layer, "units", None)
        if size is None:
            raise ValueError("Argument `never` needs an `output_layer` with `units` (the vocabulary size).")
        penalty = np.zeros(size, "float32")
        penalty[list(never)] = -np.inf
        blocked = tf.constant(penalty)

    def step(tokens, states, constants=None):
        embedded = tf.gather(embedding.embeddings, tokens)  # (batch, embedding_dim)
        output, new_states = cell(embedded, list(states), training=False)  # (batch, units)
        if readout is not None:
            output = readout(output, constants)
        logits = output_layer(output)  # (batch, vocabulary)
        if blocked is not None:
            logits = logits + blocked
        new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
        return tf.nn.log_softmax(logits), new_states

    return step


def attention_readout(attention, combine, context_first=False):
    """The readout of a decoder with attention over its encoder's outputs, one step:

        context = attention([output as a one-step query, values, keys], mask=[None, mask])
        readout = combine(concatenate([output, context]))     ([context, output] if context_first)

    `attention` is the trained `keras.layers.Attention` (or any layer called the
    same way), `combine` the trained layer after it (e.g. Dense(tanh)); the
    search's constants are (values, keys) or (values, keys, mask of the values).
    """

    def readout(output, constants):
        values, keys, *mask = constants
        query = output[:, tf.newaxis]  # (batch, 1, units): one decoder step
        if mask:
            context = attention([query, values, keys], mask=[None, mask[0]])
        else:
            context = attention([query, values, keys])
        context = context[:, 0]  # (batch, value features)
        joined = [context, output] if context_first else [output, context]
        return combine(tf.concat(joined, axis=-1))

    return readout
