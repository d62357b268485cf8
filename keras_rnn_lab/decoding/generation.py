"""Sampling text one character at a time, the lecture's way, in a compiled loop.

A character model here is `lookup -> Embedding -> recurrent layer -> Dense`:
`StringLookup` (its vocabulary, with the out-of-vocabulary entry at index 0,
lives in the model), an `Embedding`, one recurrent layer with
`return_sequences=True` (ours or Keras's), and a `Dense` layer of logits.

`generate` runs the recurrent layer's *cell* one step per character inside one
`tf.while_loop`, carrying the state from step to step: the priming text is fed
once, character by character, and then each sampled character is fed back.
Nothing is ever re-read, so n characters cost n steps (not n^2 as calling
`model.predict` on the growing prefix does).

    p(next | past) = softmax(logits / temperature), restricted to the top_k largest
    (the out-of-vocabulary entry is never sampled)
"""

import keras
import numpy as np
import tensorflow as tf


def _char_model_parts(model):
    lookups = [layer for layer in model.layers if isinstance(layer, keras.layers.StringLookup)]
    embeddings = [layer for layer in model.layers if isinstance(layer, keras.layers.Embedding)]
    recurrent = [layer for layer in model.layers if isinstance(layer, keras.layers.RNN)]
    dense = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not (len(lookups) == len(embeddings) == len(recurrent) == 1 and dense):
        raise ValueError(
            "Argument `model` must be lookup -> Embedding -> one recurrent layer -> Dense; received layers "
            f"{[type(layer).__name__ for layer in model.layers]}."
        )
    return lookups[0], embeddings[0], recurrent[0], dense[-1]


class TextGenerator:
    """Compiled sampler for a character model (see the module docstring).

    generator = TextGenerator(model)
    texts = generator("From fairest", length=500, temperature=0.8, seed=1, samples=3)
    """

    def __init__(self, model):
        self.lookup, self.embedding, self.recurrent, self.dense = _char_model_parts(model)
        self.cell = self.recurrent.cell
        self.vocabulary = tf.constant(self.lookup.get_vocabulary())
        self._loop = tf.function(self._sample_loop, reduce_retracing=True)

    def __call__(self, prime, length, temperature=1.0, top_k=None, seed=0, samples=1):
        """`samples` texts, each `prime` followed by `length` sampled characters."""
        if not isinstance(prime, str) or not prime:
            raise ValueError(f"Argument `prime` must be a non-empty string; received {prime!r}.")
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"Argument `length` must be an int >= 0; received {length!r}.")
        if not temperature > 0:
            raise ValueError(f"Argument `temperature` must be > 0; received {temperature!r}.")
        vocabulary_size = int(self.vocabulary.shape[0])
        if top_k is not None and not (isinstance(top_k, int) and 0 < top_k <= vocabulary_size):
            raise ValueError(f"Argument `top_k` must be an int in [1, {vocabulary_size}] or None; received {top_k!r}.")
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ValueError(f"Argument `samples` must be a positive int; received {samples!r}.")
        if length == 0:
            return [prime] * samples
        texts = self.generate(prime, length, temperature, top_k or vocabulary_size, seed, samples)
        return [text.decode("utf-8") for text in texts.numpy()]

    def generate(self, prime, length, temperature, top_k, seed, samples=1):
        """The same as calling the generator, as TensorFlow ops (no argument
        checks beyond a non-empty prime): a tf.string tensor (samples,) of
        `prime` followed by `length` sampled characters.  Traceable, so an
        exported serving function runs the whole loop inside the graph."""
        prime = tf.convert_to_tensor(prime, tf.string)
        characters = tf.strings.unicode_split(prime, "UTF-8")  # (prime length,), code points as Python's list(str)
        tf.debugging.assert_positive(tf.size(characters), message="Argument `prime` must be a non-empty string.")
        prime_ids = self.lookup(tf.tile(characters[tf.newaxis, :], [samples, 1]))  # unknown characters -> 0 (OOV)
        ids = self._loop(
            prime_ids,
            tf.cast(length, tf.int32),
            tf.cast(temperature, tf.float32),
            tf.cast(top_k, tf.int32),
            tf.cast(seed, tf.int32),
        )
        generated = tf.strings.reduce_join(tf.gather(self.vocabulary, ids), axis=-1)  # (samples,)
        return prime + generated

    def _sample_loop(self, prime_ids, length, temperature, top_k, seed):
        """(samples, length) sampled ids: the prime is stepped through first."""
        batch = tf.shape(prime_ids)[0]
        prime_length = tf.shape(prime_ids)[1]
        states = self.cell.get_initial_state(batch_size=batch)
        states = list(states) if isinstance(states, (list, tuple)) else [states]

        def step(token, states):
            output, new_states = self.cell(self.embedding(token), states, training=False)
            new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
            return self.dense(output), new_states  # logits (samples, vocabulary)

        never_oov = tf.one_hot(0, tf.shape(self.vocabulary)[0], on_value=-np.inf, off_value=0.0)

        def sample(logits, t):
            # Index 0 is the out-of-vocabulary entry: a valid input, never an output.
            logits = logits / temperature + never_oov
            kth_largest = tf.math.top_k(logits, k=top_k).values[:, -1:]
            logits = tf.where(logits < kth_largest, tf.fill(tf.shape(logits), -np.inf), logits)
            draw = tf.random.stateless_categorical(logits, 1, seed=tf.stack([seed, t]), dtype=tf.int64)
            return tf.cast(draw[:, 0], prime_ids.dtype)

        # The prime: its characters go in one by one; only the state is kept.
        def prime_body(t, states):
            _, states = step(prime_ids[:, t], states)
            return t + 1, states

        _, states = tf.while_loop(lambda t, _: t < prime_length - 1, prime_body, (tf.constant(0), states))
        logits, states = step(prime_ids[:, -1], states)

        # Then each sample is written and fed back (the step after the last sample
        # is wasted: one step in `length`, cheaper than a branch in every step).
        def sample_body(t, logits, states, generated):
            token = sample(logits, t)
            logits, states = step(token, states)
            return t + 1, logits, states, generated.write(t, token)

        generated = tf.TensorArray(prime_ids.dtype, size=length)
        _, _, _, generated = tf.while_loop(
            lambda t, *_: t < length, sample_body, (tf.constant(0), logits, states, generated)
        )
        return tf.transpose(generated.stack())  # (samples, length)
