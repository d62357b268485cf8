"""Greedy and beam-search decoding of a recurrent decoder, in compiled loops.

TensorFlow-only: each search is one `tf.function` around one `tf.while_loop`;
nothing runs in Python per step.  The model enters through a step function

    log_probs, new_states = step_fn(tokens, states, constants)

    tokens     int32 (batch,)           the previous token of every sequence
    states     list of tensors          each (batch, ...): the decoder's state
    constants  nested structure         each tensor (batch, ...), e.g. encoder
                                        outputs and their mask for attention
    log_probs  float (batch, vocab)     log p(next token | tokens so far)

Both searches start every sequence with `start_token`, stop a sequence when it
produces `end_token` (kept in the output) and stop the loop when every
sequence has stopped or `max_length` tokens are written.  Outputs:

    tokens   int32 (batch, max_length)  the end token included, 0 (padding) after it
    lengths  int32 (batch,)             tokens up to and including the end token,
                                        or max_length when none came

Greedy decoding takes the most likely token at every step.  Beam search keeps
the `beam_width` most likely partial sequences of every example; at each step
each of them is extended by every token and the best `beam_width` of the
`beam_width * vocab` candidates survive.  A finished beam stays in the beam
with its score unchanged (its only continuation is padding, at log 1 = 0).
States are reordered to follow their beams; constants are tiled once per beam
and never reordered (every beam of an example shares them).  The ranking score
of a sequence of n tokens with log probability L is

    L / ((5 + n) / 6) ** length_penalty        (Wu et al., 2016; 0 = plain L)

and `beam_search` returns L of the best beam as its score.  With
`beam_width=1` beam search is greedy decoding.

Each search is traced once per step function (compared with ==, so a bound
method of one object counts as one) and per batch-shape pattern: make the step
function once and reuse it, not a new lambda per call.
"""

import numbers

import tensorflow as tf

from keras_rnn_lab._validation import check_positive_int


def greedy_decode(step_fn, states, start_token, end_token, max_length, constants=None):
    """The most likely token at every step: (tokens, lengths), see the module docstring."""
    states = _check_arguments(step_fn, states, start_token, end_token, max_length)
    return _greedy_loop(step_fn, states, constants, int(start_token), int(end_token), int(max_length))


def beam_search(step_fn, states, start_token, end_token, max_length, beam_width, constants=None, length_penalty=0.0):
    """The best of `beam_width` beams per example: (tokens, lengths, scores).

    scores: float (batch,), the log probability of each returned sequence.
    """
    states = _check_arguments(step_fn, states, start_token, end_token, max_length)
    beam_width = check_positive_int("beam_width", beam_width)
    if isinstance(length_penalty, bool) or not isinstance(length_penalty, numbers.Real) or not length_penalty >= 0:
        raise ValueError(f"Argument `length_penalty` must be a number >= 0; received {length_penalty!r}.")
    return _beam_loop(
        step_fn, states, constants, int(start_token), int(end_token), int(max_length), beam_width, float(length_penalty)
    )


def decode(step_fn, states, start_token, end_token, max_length, beam_width=1, constants=None, length_penalty=0.0):
    """(tokens, lengths) of greedy decoding (`beam_width` 1) or of beam search's
    best beam: the one call a translator or captioner makes for either."""
    if check_positive_int("beam_width", beam_width) == 1:
        return greedy_decode(step_fn, states, start_token, end_token, max_length, constants=constants)
    tokens, lengths, _ = beam_search(
        step_fn, states, start_token, end_token, max_length, beam_width, constants, length_penalty
    )
    return tokens, lengths


def tokens_to_text(tokens, lengths, words, skip=()):
    """(batch,) strings, in the graph: `words[token]` for the first `lengths`
    tokens of each row, the `skip` tokens (end, padding) left out, joined by
    spaces.  tokens (batch, max_length) int32, lengths (batch,), words a string tensor."""
    positions = tf.range(tf.shape(tokens)[1])[tf.newaxis, :]
    keep = positions < lengths[:, tf.newaxis]
    for token in skip:
        keep &= tokens != token
    return tf.strings.reduce_join(tf.ragged.boolean_mask(tf.gather(words, tokens), keep), axis=-1, separator=" ")


# --- argument checks --------------------------------------------------------------
def _check_arguments(step_fn, states, start_token, end_token, max_length):
    if not callable(step_fn):
        raise TypeError(
            "Argument `step_fn` must be callable (tokens, states, constants) -> (log_probs, states); "
            f"received {step_fn!r}."
        )
    if not isinstance(states, (list, tuple)) or not states:
        raise TypeError(
            f"Argument `states` must be a non-empty list or tuple of tensors with a leading batch dimension; "
            f"received {type(states).__name__}."
        )
    states = [tf.convert_to_tensor(state) for state in states]
    for i, state in enumerate(states):
        if state.shape.rank == 0:
            raise ValueError(f"Argument `states`: entry {i} is a scalar; expected a leading batch dimension.")
    for name, token in (("start_token", start_token), ("end_token", end_token)):
        if isinstance(token, bool) or not isinstance(token, numbers.Integral) or token < 0:
            raise ValueError(f"Argument `{name}` must be an int >= 0 (a token id); received {token!r}.")
    check_positive_int("max_length", max_length)
    return states


def _step(step_fn, tokens, states, constants):
    log_probs, new_states = step_fn(tokens, states, constants)
    new_states = list(new_states) if isinstance(new_states, (list, tuple)) else [new_states]
    if len(new_states) != len(states):
        raise ValueError(
            f"`step_fn` returned {len(new_states)} states; expected {len(states)}, as many as it was given."
        )
    if log_probs.shape.rank != 2:
        raise ValueError(f"`step_fn` must return log_probs of shape (batch, vocab); received shape {log_probs.shape}.")
    return log_probs, new_states


def _like(new, old):
    """`new` with `old`'s static shape, so tf.while_loop sees loop variables keep their shapes
    (a gather or a step function may lose the batch size)."""
    if isinstance(new, list):
        return [tf.ensure_shape(n, o.shape) for n, o in zip(new, old)]
    return tf.ensure_shape(new, old.shape)


# --- greedy ------------------------------------------------------------------------
@tf.function(reduce_retracing=True)
def _greedy_loop(step_fn, states, constants, start_token, end_token, max_length):
    batch = tf.shape(states[0])[0]
    tokens = tf.fill([batch], tf.constant(start_token, tf.int32))
    finished = tf.zeros([batch], tf.bool)
    lengths = tf.zeros([batch], tf.int32)
    # Written in place, step t at column t (as the beam search does), rather than
    # in a TensorArray: TFLite converts a TensorArray of unknown batch size only
    # through the Flex delegate, this with builtin ops.
    written = tf.zeros([batch, max_length], tf.int32)

    def body(t, tokens, states, finished, lengths, written):
        log_probs, new_states = _step(step_fn, tokens, states, constants)
        new_tokens = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
        new_tokens = _like(tf.where(finished, 0, new_tokens), tokens)  # padding after the end
        lengths += tf.cast(~finished, tf.int32)
        finished |= tf.equal(new_tokens, end_token)
        at_t = tf.cast(tf.one_hot(t, max_length), tf.bool)  # (max_length,)
        written = _like(tf.where(at_t, new_tokens[:, tf.newaxis], written), written)
        return t + 1, new_tokens, _like(new_states, states), finished, lengths, written

    _, _, _, _, lengths, written = tf.while_loop(
        lambda t, tokens, states, finished, *_: (t < max_length) & ~tf.reduce_all(finished),
        body,
        (tf.constant(0), tokens, states, finished, lengths, written),
    )
    return written, lengths


# --- beam search -------------------------------------------------------------------
def _penalty(lengths, length_penalty):
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, length_penalty)


@tf.function(reduce_retracing=True)
def _beam_loop(step_fn, states, constants, start_token, end_token, max_length, beam_width, length_penalty):
    batch = tf.shape(states[0])[0]
    width = beam_width
    # Every example's beams side by side: row b * width + k is beam k of example b.
    states = [tf.repeat(state, width, axis=0) for state in states]
    if constants is not None:
        constants = tf.nest.map_structure(lambda c: tf.repeat(c, width, axis=0), constants)
    tokens = tf.fill([batch * width], tf.constant(start_token, tf.int32))
    # Only beam 0 is alive at first, so the first step's candidates are all distinct.
    first = tf.concat([tf.zeros([1]), tf.fill([width - 1], float("-inf"))], axis=0)
    scores = tf.tile(first[tf.newaxis], [batch, 1])  # (batch, width) log probabilities, float32
    finished = tf.zeros([batch, width], tf.bool)
    lengths = tf.zeros([batch, width], tf.int32)
    sequences = tf.zeros([batch, width, max_length], tf.int32)

    loop_shapes = [scores, finished, lengths, sequences]

    def body(t, tokens, states, scores, finished, lengths, sequences):
        log_probs, new_states = _step(step_fn, tokens, states, constants)
        vocab = tf.shape(log_probs)[1]
        log_probs = tf.reshape(tf.cast(log_probs, tf.float32), [batch, width, vocab])
        # A finished beam's only continuation: padding (token 0) at log 1 = 0.
        pad_only = tf.concat([tf.zeros([1]), tf.fill([vocab - 1], float("-inf"))], axis=0)
        log_probs = tf.where(finished[:, :, tf.newaxis], pad_only, log_probs)
        candidates = scores[:, :, tf.newaxis] + log_probs  # (batch, width, vocab)
        candidate_lengths = tf.where(finished, lengths, t + 1)[:, :, tf.newaxis]
        ranking = candidates / _penalty(candidate_lengths, length_penalty) if length_penalty else candidates
        # Ties go to the lower index (top_k's rule), as argmax does: width 1 is greedy.
        _, best = tf.math.top_k(tf.reshape(ranking, [batch, width * vocab]), k=width)  # (batch, width)
        parents, new_tokens = best // vocab, tf.cast(best % vocab, tf.int32)
        scores = tf.gather(tf.reshape(candidates, [batch, width * vocab]), best, batch_dims=1)
        was_finished = tf.gather(finished, parents, batch_dims=1)
        lengths = tf.gather(lengths, parents, batch_dims=1) + tf.cast(~was_finished, tf.int32)
        finished = was_finished | tf.equal(new_tokens, end_token)
        sequences = tf.gather(sequences, parents, batch_dims=1)
        at_t = tf.cast(tf.one_hot(t, max_length), tf.bool)  # (max_length,)
        sequences = tf.where(at_t, new_tokens[:, :, tf.newaxis], sequences)
        rows = tf.reshape(parents + tf.range(batch)[:, tf.newaxis] * width, [-1])  # (batch * width,)
        new_states = [tf.gather(state, rows) for state in new_states]
        return (
            t + 1,
            _like(tf.reshape(new_tokens, [-1]), tokens),
            _like(new_states, states),
            *_like([scores, finished, lengths, sequences], loop_shapes),
        )

    def running(t, tokens, states, scores, finished, *_):
        # Without a length penalty scores only fall, so a finished top beam has won;
        # with one, wait until every live beam has finished (dead beams score -inf).
        done = finished[:, 0] if not length_penalty else tf.reduce_all(finished | tf.math.is_inf(scores), axis=1)
        return (t < max_length) & ~tf.reduce_all(done)

    _, _, _, scores, finished, lengths, sequences = tf.while_loop(
        running, body, (tf.constant(0), tokens, states, scores, finished, lengths, sequences)
    )
    ranking = scores / _penalty(lengths, length_penalty) if length_penalty else scores
    best = tf.argmax(ranking, axis=1, output_type=tf.int32)  # (batch,)
    return (
        tf.gather(sequences, best, batch_dims=1),
        tf.gather(lengths, best, batch_dims=1),
        tf.gather(scores, best, batch_dims=1),
    )
