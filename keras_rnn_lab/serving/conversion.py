"""What the TFLite and ONNX exports share: a conversion's error, said in two lines.

The TFLite converter and tf2onnx report a failure as an MLIR dump (pages of
`loc(callsite(...))`) or a Python trace, partly written by C++ straight to
file descriptor 2.  `native_output_captured` keeps that off the terminal
while converting, and `ConversionError` says which recipe, which endpoint and
which TensorFlow ops the runtime lacks; `--debug` shows the whole dump.
"""

import contextlib
import os
import re
import sys
import tempfile

from keras_rnn_lab.errors import RunError
from keras_rnn_lab.training.command_line import debug_requested


class ConversionError(RunError):
    """An endpoint that a runtime cannot run (exit status 1, nothing written)."""


@contextlib.contextmanager
def native_output_captured():
    """Send file descriptors 1 and 2 (C++ and Python output alike) to a
    temporary file for the block; yields a function returning what was
    written.  Under `--debug` (KERAS_RNN_LAB_DEBUG=1) nothing is captured."""
    if debug_requested():
        yield lambda: ""
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = [os.dup(1), os.dup(2)]
        try:
            os.dup2(sink.fileno(), 1)
            os.dup2(sink.fileno(), 2)
            yield lambda: _read_all(sink)
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)


def _read_all(sink):
    sink.flush()
    sink.seek(0)
    return sink.read().decode("utf-8", "replace")


def missing_ops(message):
    """The TensorFlow op names a converter's `message` says it cannot convert."""
    ops = []
    for listed in re.findall(r"(?:TF Select ops|Flex ops|custom ops): ([\w, ]+)", message):
        ops += [op.strip() for op in listed.split(",") if op.strip()]
    ops += re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", message)
    ops += re.findall(r"No conversion function registered for op type (\w+)", message)
    for listed in re.findall(r"Unsupported ops: ([\w, ]+)", message):
        ops += [op.strip() for op in listed.split(",") if op.strip()]
    return sorted(set(ops))


def first_error_line(message):
    """The converter's reason in one line: "tf.OP op <why>" where it names an op."""
    named = re.search(r"'(tf\.\w+)' op ([^\n]+)", message)
    if named:
        return f"{named.group(1)} {named.group(2).strip()}"[:300]
    for line in message.splitlines():
        line = line.strip()
        if "error:" in line:
            return line.rsplit("error:", 1)[1].strip()[:300]
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"


def conversion_error(runtime, recipe, endpoint, message):
    """A ConversionError naming the recipe, the endpoint and the missing ops."""
    where = f"{recipe or 'the model'}'s endpoint {endpoint!r}"
    ops = missing_ops(message)
    if ops:
        return ConversionError(
            f"cannot export {where} to {runtime}: it has no builtin op for {', '.join('tf.' + op for op in ops)}; "
            "nothing was written (--debug shows the converter's whole message)."
        )
    return ConversionError(
        f"cannot export {where} to {runtime}: {first_error_line(message)}; nothing was written "
        "(--debug shows the converter's whole message)."
    )
