"""The lecture's recurrence equations in plain NumPy (float64), stepped by hand.

Weights use the cells' layout: U = kernel (features, gates*units), W =
recurrent_kernel (units, gates*units), b = bias, gate blocks side by side
(LSTM i, f, C~, o; GRU z, r, h~).  Nothing here knows about Keras.
"""

import numpy as np

ACTIVATIONS = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0)}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def simple_rnn_step(x, states, U, W, b, activation="tanh"):
    """s_t = f(x_t U + s_{t-1} W + b)."""
    (s_prev,) = states
    s = ACTIVATIONS[activation](x @ U + s_prev @ W + b)
    return s, [s]


def lstm_step(x, states, U, W, b):
    """i, f, C~, o gates; C_t = f * C_{t-1} + i * C~; h_t = o * tanh(C_t)."""
    h_prev, c_prev = states
    a_i, a_f, a_c, a_o = np.split(x @ U + h_prev @ W + b, 4, axis=-1)
    i = sigmoid(a_i)
    f = sigmoid(a_f)
    c_candidate = np.tanh(a_c)
    o = sigmoid(a_o)
    c = f * c_prev + i * c_candidate
    h = o * np.tanh(c)
    return h, [h, c]


def gru_step(x, states, U, W, b, reset_after, update_convention):
    """z, r gates and candidate h~; see GRUCell's docstring for both variants.

    reset_after=True: b is (2, 3*units), row 0 for x U, row 1 (b') for h W.
    update_convention "keras":   h_t = z * h_{t-1} + (1 - z) * h~
    update_convention "lecture": h_t = (1 - z) * h_{t-1} + z * h~
    """
    (h_prev,) = states
    U_z, U_r, U_h = np.split(U, 3, axis=-1)
    W_z, W_r, W_h = np.split(W, 3, axis=-1)
    if reset_after:
        (b_z, b_r, b_h), (bw_z, bw_r, bw_h) = np.split(b[0], 3), np.split(b[1], 3)
    else:
        (b_z, b_r, b_h), (bw_z, bw_r, bw_h) = np.split(b, 3), (0.0, 0.0, 0.0)
    z = sigmoid(x @ U_z + b_z + h_prev @ W_z + bw_z)
    r = sigmoid(x @ U_r + b_r + h_prev @ W_r + bw_r)
    if reset_after:
        h_candidate = np.tanh(x @ U_h + b_h + r * (h_prev @ W_h + bw_h))
    else:
        h_candidate = np.tanh(x @ U_h + (r * h_prev) @ W_h + b_h)
    if update_convention == "keras":
        h = z * h_prev + (1.0 - z) * h_candidate
    elif update_convention == "lecture":
        h = (1.0 - z) * h_prev + z * h_candidate
    else:
        raise ValueError(f"unknown update_convention {update_convention!r}")
    return h, [h]


def run(step, sequences, initial_states, **weights):
    """Step over (batch, time, features); returns outputs (batch, time, units), final states."""
    states = [np.asarray(s, dtype=np.float64) for s in initial_states]
    outputs = []
    for t in range(sequences.shape[1]):
        output, states = step(np.asarray(sequences[:, t], dtype=np.float64), states, **weights)
        outputs.append(output)
    return np.stack(outputs, axis=1), states
