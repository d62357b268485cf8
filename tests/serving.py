"""Serve exported SavedModels in a fresh Python process that imports TensorFlow only.

`serve_in_fresh_process(path, signature, inputs)` writes `inputs` (name ->
NumPy array) to a file, runs a new interpreter that loads the SavedModel with
`tf.saved_model.load` and calls the signature (once per entry of `calls`,
for stateful models), and returns its outputs as a list of {name: array}.
`serve_many(jobs)` does the same for several exports in one process (each
fresh interpreter costs seconds of TensorFlow start-up).

The child imports tensorflow and numpy only, and fails if keras_rnn_lab or
recipes got imported: the export must serve without this package.  (keras
itself is in sys.modules either way: `import tensorflow` loads it for tf.keras.)
"""

import dataclasses
import json
import pathlib
import subprocess
import sys
import tempfile
import textwrap

import numpy as np

CHILD = textwrap.dedent(
    """
    import json
    import sys
    import numpy as np
    import tensorflow as tf

    jobs_file, outputs_file = sys.argv[1:3]
    results = {}
    for number, job in enumerate(json.load(open(jobs_file))):
        function = tf.saved_model.load(job["path"]).signatures[job["signature"]]
        inputs = dict(np.load(job["inputs"], allow_pickle=False))
        for call in range(job["calls"]):
            outputs = function(**{name: tf.constant(value) for name, value in inputs.items()})
            for name, value in outputs.items():
                value = value.numpy()
                if isinstance(value, bytes):  # a scalar tf.string
                    value = np.array(value.decode("utf-8"))
                elif value.dtype == object:  # tf.string -> bytes; store as str (no pickles)
                    value = np.vectorize(lambda b: b.decode("utf-8"), otypes=[str])(value)
                results[f"{number}/{call}/{name}"] = value
    imported = sorted(name for name in sys.modules if name.split(".")[0] in ("keras_rnn_lab", "recipes"))
    if imported:
        raise SystemExit(f"serving imported {imported}")
    np.savez(outputs_file, **results)
    """
)


@dataclasses.dataclass
class Job:
    path: str  # the SavedModel directory (OUT/1)
    signature: str
    inputs: dict  # argument name -> NumPy array
    calls: int = 1


def serve_many(jobs):
    """Outputs of every job, in order: per job a list (one per call) of {name: array}."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        described = []
        for number, job in enumerate(jobs):
            inputs_file = scratch / f"inputs{number}.npz"
            np.savez(inputs_file, **job.inputs)
            described.append(
                {"path": str(job.path), "signature": job.signature, "inputs": str(inputs_file), "calls": job.calls}
            )
        (scratch / "jobs.json").write_text(json.dumps(described))
        outputs_file = scratch / "outputs.npz"
        process = subprocess.run(
            [sys.executable, "-c", CHILD, str(scratch / "jobs.json"), str(outputs_file)],
            capture_output=True,
            text=True,
            env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
            cwd="/",  # nowhere near the repository: nothing of ours on the path
            timeout=600,
        )
        assert process.returncode == 0, process.stderr[-3000:]
        results = [[{} for _ in range(job.calls)] for job in jobs]
        for key, value in np.load(outputs_file, allow_pickle=False).items():
            number, call, name = key.split("/", 2)
            results[int(number)][int(call)][name] = value
    return results


def serve_in_fresh_process(path, signature, inputs, calls=1):
    return serve_many([Job(path, signature, inputs, calls)])[0]
