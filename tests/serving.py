"""Serve an exported SavedModel in a fresh Python process that imports TensorFlow only.

`serve_in_fresh_process(path, signature, inputs)` writes `inputs` (name ->
NumPy array) to a file, runs a new interpreter that loads the SavedModel with
`tf.saved_model.load` and calls the signature (once per entry of `calls`,
for stateful models), and returns its outputs as a list of {name: array}.
The child imports tensorflow and numpy only, and fails if keras_rnn_lab or
recipes got imported: the export must serve without this package.  (keras
itself is in sys.modules either way: `import tensorflow` loads it for tf.keras.)
"""

import pathlib
import subprocess
import sys
import textwrap

import numpy as np

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    path, signature, inputs_file, outputs_file, calls = sys.argv[1:6]
    served = tf.saved_model.load(path)
    function = served.signatures[signature]
    inputs = dict(np.load(inputs_file, allow_pickle=False))
    results = {}
    for call in range(int(calls)):
        outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
        for name, value in outputs.items():
            value = value.numpy()
            if value.dtype == object:  # tf.string -> bytes; store as str (no pickles)
                value = np.vectorize(lambda b: b.decode("utf-8"), otypes=[str])(value)
            results[f"{call}/{name}"] = value
    imported = sorted(name for name in sys.modules if name.split(".")[0] in ("keras_rnn_lab", "recipes"))
    if imported:
        raise SystemExit(f"serving imported {imported}")
    np.savez(outputs_file, **results)
    """
)


def serve_in_fresh_process(path, signature, inputs, calls=1, tmp_dir=None):
    tmp_dir = pathlib.Path(tmp_dir or path).parent
    inputs_file, outputs_file = tmp_dir / "serve_inputs.npz", tmp_dir / "serve_outputs.npz"
    np.savez(inputs_file, **inputs)
    process = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), signature, str(inputs_file), str(outputs_file), str(calls)],
        capture_output=True,
        text=True,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        cwd="/",  # nowhere near the repository: nothing of ours on the path
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    results = [{} for _ in range(calls)]
    for key, value in np.load(outputs_file, allow_pickle=False).items():
        call, name = key.split("/", 1)
        results[int(call)][name] = value
    return results
