"""Build (once per machine, then cached) and load the compiled recurrence kernels.

`recurrence_kernels.cc` (with `packed_gemm.h`) is compiled against the running TensorFlow's own headers
and library (`tf.sysconfig`) with the system's C++ compiler, into a cache folder
keyed by everything the binary depends on (the source, TensorFlow's version and
flags, the compiler, the CPU's instruction sets, since it is built with
-march=native), and loaded with `tf.load_op_library`.  Written to a temporary
name and renamed, under a lock, so two processes never load half a file.

Whenever that fails (no compiler, another TensorFlow, a read-only home) the
layers run the pure-TensorFlow BPTT instead; `load()` says why in one line,
and warns with that line once per process.  KERAS_RNN_LAB_KERNELS=0 turns the
kernels off (CI runs the tests both ways).
"""

import fcntl
import functools
import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import warnings

SOURCE = pathlib.Path(__file__).with_name("recurrence_kernels.cc")
HEADERS = [pathlib.Path(__file__).with_name("packed_gemm.h")]  # included by SOURCE: part of the cache key
SWITCH = "KERAS_RNN_LAB_KERNELS"


def cache_folder():
    """$KERAS_RNN_LAB_CACHE, else $XDG_CACHE_HOME/keras_rnn_lab, else ~/.cache/keras_rnn_lab."""
    if os.environ.get("KERAS_RNN_LAB_CACHE"):
        return pathlib.Path(os.environ["KERAS_RNN_LAB_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base) / "keras_rnn_lab"


def _cpu_flags():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()


def _compiler():
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("c++") or shutil.which("clang++")


def _command(compiler, output):
    import tensorflow as tf

    return [
        compiler,
        "-shared",
        "-fPIC",
        "-O3",
        "-march=native",
        "-w",
        *tf.sysconfig.get_compile_flags(),
        str(SOURCE),
        "-o",
        str(output),
        *tf.sysconfig.get_link_flags(),
    ]


def _library_path(compiler):
    import tensorflow as tf

    version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    sources = [path.read_text() for path in (SOURCE, *HEADERS)]
    key = "\n".join([*sources, tf.__version__, " ".join(_command(compiler, "")), version, _cpu_flags()])
    return cache_folder() / f"recurrence_kernels-{hashlib.sha256(key.encode()).hexdigest()[:16]}.so"


def _build(compiler, library):
    library.parent.mkdir(parents=True, exist_ok=True)
    with open(library.parent / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building the same file
        if library.exists():
            return
        print("keras_rnn_lab: compiling the recurrence kernels (once per machine, about a minute)", file=sys.stderr)
        with tempfile.TemporaryDirectory(dir=library.parent) as scratch:
            partial = pathlib.Path(scratch) / library.name
            done = subprocess.run(_command(compiler, partial), capture_output=True, text=True, timeout=900)
            if done.returncode != 0:
                last = [line for line in done.stderr.splitlines() if "error" in line][:1] or done.stderr.splitlines()[
                    -1:
                ]
                raise RuntimeError(f"{pathlib.Path(compiler).name} failed: {' '.join(last)[:300]}")
            os.replace(partial, library)


@functools.cache
def load():
    """(module with the two ops, None) or (None, why not in one line)."""
    if os.environ.get(SWITCH, "1") == "0":
        return None, f"{SWITCH}=0"
    try:
        import tensorflow as tf

        compiler = _compiler()
        if compiler is None:
            raise RuntimeError("no C++ compiler (g++, c++ or clang++; or set CXX)")
        library = _library_path(compiler)
        _build(compiler, library)
        return tf.load_op_library(str(library)), None
    except Exception as error:  # any failure means: the pure-TensorFlow loop
        reason = f"compiled kernels unavailable ({type(error).__name__}: {error})".replace("\n", " ")
        warnings.warn(f"keras_rnn_lab: {reason}; using the TensorFlow loop.", RuntimeWarning, stacklevel=2)
        return None, reason
