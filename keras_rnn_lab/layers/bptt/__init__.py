"""Hand-written backpropagation through time for the three cells (TensorFlow).

Each module takes the time-major inputs and the input projection (U, b).  For
training, xp_t = x_t U + b is computed for all steps in one matmul before the
loop, and the loop runs only the recurrent part; inference projects each step
inside the loop instead (measured faster: nothing large is written and read
back).  Its `tf.custom_gradient` backward pass walks time in reverse,
carrying dh (and dC) as the lecture's chain rule does, with one matmul per step on that chain.
Every per-step product h W and da W^T is split in two half-depth matmuls
(`loop.two_core_matmul`): TensorFlow runs one such small matmul on one core,
and the two halves on both.  The recurrent weight gradient sum_t h_{t-1}^T da_t
is accumulated step by step beside the chain (SimpleRNN, LSTM, GRU with
reset_after) or formed in one large matmul after the loop (GRU with the reset
before), whichever measured faster.  Gradients of U, b and x then come from
autodiff of the projection, as large matmuls.
"""
