"""Serve exports in a fresh Python process: SavedModels with TensorFlow only,
TFLite files with ai_edge_litert only, ONNX files with onnxruntime only.

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


# The TFLite and ONNX files in their own runtimes, which need no TensorFlow:
# the child fails if tensorflow (or anything of ours) got imported.  A job
# with `feedback` steps a sequence through the file: call t gets column t of
# each input in `stepped` and, after the first call, its outputs NEW_X as
# inputs X; the outputs come back stacked over the steps (axis 1).
RUNTIME_CHILD = textwrap.dedent(
    """
    import json
    import sys
    import numpy as np

    runtime, jobs_file, outputs_file = sys.argv[1:4]
    if runtime == "tflite":
        from ai_edge_litert.interpreter import Interpreter

        def load(path, signature):
            runner = Interpreter(model_path=path).get_signature_runner(signature)
            return lambda inputs: runner(**inputs)
    else:
        import onnxruntime

        def load(path, signature):
            session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
            names = [output.name for output in session.get_outputs()]
            return lambda inputs: dict(zip(names, session.run(None, inputs)))

    results = {}
    for number, job in enumerate(json.load(open(jobs_file))):
        run = load(job["path"], job["signature"])
        inputs = dict(np.load(job["inputs"], allow_pickle=False))
        if not job["feedback"]:
            for _ in range(job["calls"]):  # the last call's outputs: state left by one call would show
                outputs = run(inputs)
        else:
            stepped = {name: inputs.pop(name) for name in job["stepped"]}
            per_step = []
            for t in range(next(iter(stepped.values())).shape[1]):
                step_outputs = run({**inputs, **{name: value[:, t] for name, value in stepped.items()}})
                per_step.append(step_outputs)
                inputs.update({name: step_outputs[new] for new, name in job["feedback"].items()})
            outputs = {name: np.stack([o[name] for o in per_step], axis=1) for name in per_step[0]}
        for name, value in outputs.items():
            results[f"{number}/{name}"] = value
    imported = sorted(name for name in sys.modules if name.split(".")[0] in ("tensorflow", "keras_rnn_lab", "recipes"))
    if imported:
        raise SystemExit(f"serving imported {imported[:5]}")
    np.savez(outputs_file, **results)
    """
)


@dataclasses.dataclass
class RuntimeJob:
    path: str  # the .tflite or .onnx file
    signature: str  # the TFLite signature (ignored by ONNX: a file is one endpoint)
    inputs: dict  # argument name -> NumPy array, of the endpoint's dtypes
    stepped: tuple = ()  # inputs given one column per call (see RUNTIME_CHILD)
    feedback: dict = dataclasses.field(default_factory=dict)  # output NEW_X -> input X of the next call
    calls: int = 1  # without feedback: call it this many times, keep the last outputs


def run_in_runtime(runtime, jobs):
    """Outputs ({name: array}) of each job, in order, from `runtime`
    ("tflite": ai_edge_litert's interpreter, "onnx": onnxruntime) in a fresh process."""
    results = [{} for _ in jobs]
    for key, value in _run_jobs([RUNTIME_CHILD, runtime], jobs, {"PATH": "/usr/bin:/bin"}).items():
        number, name = key.split("/", 1)
        results[int(number)][name] = value
    return results


def _run_jobs(child, jobs, env):
    """Run `python -c CHILD... JOBS.json OUTPUTS.npz` (`child`: the code and its
    first arguments) on `jobs` (dataclasses with NumPy `inputs`), from `/`;
    returns the outputs file's arrays."""
    with tempfile.TemporaryDirectory() as scratch:
        scratch = pathlib.Path(scratch)
        described = []
        for number, job in enumerate(jobs):
            inputs_file = scratch / f"inputs{number}.npz"
            np.savez(inputs_file, **job.inputs)
            fields = {k: v for k, v in dataclasses.asdict(job).items() if k != "inputs"}
            described.append({**fields, "path": str(job.path), "inputs": str(inputs_file)})
        (scratch / "jobs.json").write_text(json.dumps(described))
        outputs_file = scratch / "outputs.npz"
        process = subprocess.run(
            [sys.executable, "-c", *child, str(scratch / "jobs.json"), str(outputs_file)],
            capture_output=True,
            text=True,
            env=env,
            cwd="/",  # nowhere near the repository: nothing of ours on the path
            timeout=600,
        )
        assert process.returncode == 0, process.stderr[-3000:]
        return dict(np.load(outputs_file, allow_pickle=False))


@dataclasses.dataclass
class Job:
    path: str  # the SavedModel directory (OUT/1)
    signature: str
    inputs: dict  # argument name -> NumPy array
    calls: int = 1


def serve_many(jobs):
    """Outputs of every job, in order: per job a list (one per call) of {name: array}."""
    results = [[{} for _ in range(job.calls)] for job in jobs]
    for key, value in _run_jobs([CHILD], jobs, {"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}).items():
        number, call, name = key.split("/", 2)
        results[int(number)][int(call)][name] = value
    return results


def serve_in_fresh_process(path, signature, inputs, calls=1):
    return serve_many([Job(path, signature, inputs, calls)])[0]
