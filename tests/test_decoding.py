"""Greedy and beam-search decoding against hand-written step functions and brute force."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from keras_rnn_lab import decoding

PAD, START, END = 0, 1, 2


def table_step(log_probs_table):
    """step_fn whose next-token distribution depends on the previous token only."""
    table = tf.constant(log_probs_table, tf.float32)

    def step(tokens, states, constants):
        return tf.gather(table, tokens), [states[0] + 1.0]

    return step


def history_step(vocab, seed, buckets=97):
    """step_fn whose distribution depends on the whole history (hashed into the state),
    so a beam that kept another beam's state would score differently."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(buckets, vocab)) * 2
    logits[:, [PAD, START]] = -np.inf  # never emitted
    table = tf.constant(logits - np.logaddexp.reduce(logits, axis=1, keepdims=True), tf.float32)

    def step(tokens, states, constants):
        history = (states[0] * 31 + tokens) % buckets  # (batch,) int32
        return tf.gather(table, history), [history]

    return step, table.numpy(), buckets


def log_softmax(rows):
    rows = np.asarray(rows, dtype="float64")
    with np.errstate(divide="ignore"):
        logs = np.log(rows / rows.sum(axis=-1, keepdims=True))
    return logs.astype("float32")


# Greedy is provably suboptimal here: after [START], "a" (3) has 0.6 and "b" (4) 0.4,
# but after "a" the end has only 0.4 and after "b" 0.99:
# P(a, END) = 0.24 < P(b, END) = 0.396.
TRAP = log_softmax(
    [
        [1, 1, 1, 1, 1],
        [0, 0, 0, 0.6, 0.4],  # after START
        [1, 1, 1, 1, 1],
        [0, 0, 0.4, 0.3, 0.3],  # after a
        [0, 0, 0.99, 0.005, 0.005],  # after b
    ]
)


def zeros_state(batch):
    return [tf.zeros((batch,), tf.float32)]


# --- greedy ------------------------------------------------------------------------------
def test_greedy_stops_at_the_end_token_and_pads_after_it():
    tokens, lengths = decoding.greedy_decode(table_step(TRAP), zeros_state(3), START, END, max_length=6)
    np.testing.assert_array_equal(tokens, [[3, 2, 0, 0, 0, 0]] * 3)
    np.testing.assert_array_equal(lengths, [2, 2, 2])
    assert tokens.dtype == tf.int32 and lengths.dtype == tf.int32


def test_greedy_respects_the_maximum_length():
    # "a" always follows "a" most likely and the end never comes first.
    never_ending = TRAP.copy()
    never_ending[3] = log_softmax([0, 0, 0.1, 0.8, 0.1])
    tokens, lengths = decoding.greedy_decode(table_step(never_ending), zeros_state(2), START, END, max_length=4)
    np.testing.assert_array_equal(tokens, [[3, 3, 3, 3]] * 2)
    np.testing.assert_array_equal(lengths, [4, 4])


def test_greedy_matches_a_python_loop_with_state_and_constants():
    vocab, batch, max_length = 7, 5, 8
    step, table, buckets = history_step(vocab, seed=3)
    bias = np.random.default_rng(0).normal(size=(batch, vocab)).astype("float32")
    bias[:, [PAD, START]] = 0

    def biased_step(tokens, states, constants):
        log_probs, states = step(tokens, states, None)
        return log_probs + constants["bias"], states

    initial = np.arange(batch, dtype="int32")
    tokens, lengths = decoding.greedy_decode(
        biased_step, [tf.constant(initial)], START, END, max_length, constants={"bias": tf.constant(bias)}
    )
    for b in range(batch):
        history, token, expected = initial[b], START, []
        while len(expected) < max_length and (not expected or expected[-1] != END):
            history = (history * 31 + token) % buckets
            token = int(np.argmax(table[history] + bias[b]))
            expected.append(token)
        assert lengths[b] == len(expected)
        np.testing.assert_array_equal(tokens[b], expected + [0] * (max_length - len(expected)))


# --- beam search ---------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_beam_width_one_is_greedy(seed):
    step, _, _ = history_step(vocab=6, seed=seed)
    states = [tf.constant(np.arange(8, dtype="int32"))]
    greedy = decoding.greedy_decode(step, states, START, END, 7)
    tokens, lengths, scores = decoding.beam_search(step, states, START, END, 7, beam_width=1)
    np.testing.assert_array_equal(tokens, greedy[0])
    np.testing.assert_array_equal(lengths, greedy[1])
    assert np.isfinite(scores.numpy()).all()


def test_beam_finds_what_greedy_misses():
    step = table_step(TRAP)
    greedy, _ = decoding.greedy_decode(step, zeros_state(1), START, END, 5)
    tokens, lengths, scores = decoding.beam_search(step, zeros_state(1), START, END, 5, beam_width=2)
    np.testing.assert_array_equal(greedy[0], [3, 2, 0, 0, 0])  # P = 0.24
    np.testing.assert_array_equal(tokens[0], [4, 2, 0, 0, 0])  # P = 0.396
    assert lengths[0] == 2
    assert scores.numpy()[0] == pytest.approx(np.log(0.4) + np.log(0.99), abs=1e-5)


def test_decode_is_greedy_at_width_one_and_the_best_beam_above():
    step = table_step(TRAP)
    greedy = decoding.greedy_decode(step, zeros_state(1), START, END, 5)
    beam = decoding.beam_search(step, zeros_state(1), START, END, 5, beam_width=2)
    for (tokens, lengths), (want_tokens, want_lengths) in (
        (decoding.decode(step, zeros_state(1), START, END, 5), greedy),
        (decoding.decode(step, zeros_state(1), START, END, 5, beam_width=2), beam[:2]),
    ):
        np.testing.assert_array_equal(tokens, want_tokens)
        np.testing.assert_array_equal(lengths, want_lengths)


def test_tokens_to_text_joins_the_words_up_to_each_length_without_the_skipped_tokens():
    words = tf.constant(["<pad>", "<start>", "<end>", "red", "square"])
    tokens = tf.constant([[3, 4, 2, 0], [4, 0, 0, 0], [3, 3, 3, 3]], "int32")
    lengths = tf.constant([3, 1, 2], "int32")
    text = decoding.tokens_to_text(tokens, lengths, words, skip=(END, 0)).numpy()
    assert [t.decode() for t in text] == ["red square", "square", "red red"]


def brute_force(table, buckets, initial, max_length, length_penalty=0.0):
    """The best sequence over every sequence of at most max_length tokens (ending at END or max_length)."""
    best = (-np.inf, None)
    tokens_range = range(2, table.shape[1])  # never PAD or START
    for length in range(1, max_length + 1):
        for sequence in itertools.product(tokens_range, repeat=length):
            if END in sequence[:-1] or (length < max_length and sequence[-1] != END):
                continue
            history, token, total = initial, START, 0.0
            for next_token in sequence:
                history = (history * 31 + token) % buckets
                total += float(table[history, next_token])
                token = next_token
            rank = total / ((5 + length) / 6) ** length_penalty
            if rank > best[0]:
                best = (rank, sequence, total)
    return best


@pytest.mark.parametrize("length_penalty", [0.0, 1.5])
def test_a_beam_as_wide_as_all_candidates_finds_the_best_sequence(length_penalty):
    vocab, max_length = 5, 3
    step, table, buckets = history_step(vocab, seed=7)
    initial = [4, 11]
    tokens, lengths, scores = decoding.beam_search(
        step,
        [tf.constant(initial, tf.int32)],
        START,
        END,
        max_length,
        beam_width=vocab**max_length,
        length_penalty=length_penalty,
    )
    for b, start_history in enumerate(initial):
        _, sequence, total = brute_force(table, buckets, start_history, max_length, length_penalty)
        assert lengths[b] == len(sequence)
        np.testing.assert_array_equal(tokens[b, : len(sequence)], sequence)
        np.testing.assert_array_equal(tokens[b, len(sequence) :], 0)
        assert scores.numpy()[b] == pytest.approx(total, abs=1e-4)


def test_beam_is_at_least_as_likely_as_greedy_and_batch_independent():
    vocab, batch, max_length = 8, 6, 6
    step, table, _ = history_step(vocab, seed=11)
    states = [tf.constant(np.arange(batch, dtype="int32") * 5)]
    greedy_tokens, greedy_lengths = decoding.greedy_decode(step, states, START, END, max_length)
    # Greedy's log probability, from a width-1 search (the same sequence).
    _, _, greedy_scores = decoding.beam_search(step, states, START, END, max_length, beam_width=1)
    tokens, lengths, scores = decoding.beam_search(step, states, START, END, max_length, beam_width=4)
    assert (scores.numpy() >= greedy_scores.numpy() - 1e-5).all()
    # Each example decoded alone gives the same beam: beams never mix across the batch.
    for b in range(batch):
        alone = decoding.beam_search(step, [states[0][b : b + 1]], START, END, max_length, beam_width=4)
        np.testing.assert_array_equal(alone[0][0], tokens[b])
        assert alone[2].numpy()[0] == pytest.approx(scores.numpy()[b], abs=1e-5)
    # Finished beams stay finished: only padding after the end token.
    for row, length in zip(tokens.numpy(), lengths.numpy()):
        assert (row[length:] == 0).all() and (row[: length - 1] != END).all()


def test_constants_are_tiled_per_beam_not_reordered():
    # The constant decides each example's favourite token; beams must see their own example's.
    vocab = 6
    favourite = np.array([3, 5, 4], dtype="int32")

    def step(tokens, states, constants):
        scores = tf.one_hot(constants, vocab) * 3.0  # (batch * beams, vocab): the favourite first
        said_it = tf.cast(tf.equal(tokens, constants), tf.float32)[:, None]  # then the end
        scores += tf.one_hot(END, vocab) * 6.0 * said_it + tf.constant([-1e9, -1e9, 0, 0, 0, 0])
        return tf.nn.log_softmax(scores), [states[0]]

    tokens, _, _ = decoding.beam_search(
        step, zeros_state(3), START, END, 4, beam_width=3, constants=tf.constant(favourite)
    )
    np.testing.assert_array_equal(tokens[:, :2], np.stack([favourite, [END] * 3], axis=1))


# --- arguments ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(max_length=0), ValueError, "`max_length` must be a positive int; received 0"),
        (dict(max_length="5"), TypeError, "`max_length` must be a positive int; received '5'"),
        (dict(beam_width=0), ValueError, "`beam_width` must be a positive int; received 0"),
        (dict(end_token=-1), ValueError, "`end_token` must be an int >= 0"),
        (dict(start_token=1.0), ValueError, "`start_token` must be an int >= 0"),
        (dict(states=tf.zeros((2,))), TypeError, "`states` must be a non-empty list or tuple"),
        (dict(states=[]), TypeError, "`states` must be a non-empty list or tuple"),
        (dict(step_fn="step"), TypeError, "`step_fn` must be callable"),
        (dict(length_penalty=-1.0), ValueError, "`length_penalty` must be a number >= 0"),
    ],
)
def test_bad_arguments_are_named(kwargs, error, message):
    arguments = dict(
        step_fn=table_step(TRAP), states=zeros_state(2), start_token=START, end_token=END, max_length=4, beam_width=2
    )
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        decoding.beam_search(**arguments)


def test_a_step_that_loses_a_state_is_named():
    def step(tokens, states, constants):
        return tf.zeros((tf.shape(tokens)[0], 5)), []

    with pytest.raises(ValueError, match="`step_fn` returned 0 states; expected 1"):
        decoding.greedy_decode(step, zeros_state(2), START, END, 3)
