"""Hand-written backpropagation through time for the three cells (TensorFlow).

Each module takes the already projected inputs xp_t = x_t U + b (time-major,
computed for all steps in one matmul outside the loop) and runs only the
recurrent part.  Its `tf.custom_gradient` backward pass walks time in reverse,
carrying dh (and dC) as the lecture's chain rule does, keeps one matmul per
step, and forms the recurrent weight gradient sum_t h_{t-1}^T da_t in one large
matmul after the loop.  Gradients of U, b and x then come from autodiff of the
projection, also as large matmuls.
"""
