"""Multi-worker start-up: TF_CONFIG checked, and the peers met before TensorFlow waits for them.

Before building MultiWorkerMirroredStrategy, `make_strategy` waits for the
other workers (`wait_for_peers`, at most `peer_timeout` seconds: 60 unless
--peer-timeout or KERAS_RNN_LAB_PEER_TIMEOUT says otherwise) and then raises a
RunError naming those it could not reach.  TensorFlow itself would wait for
ever, silently, inside the strategy's constructor: a C++ call that holds
Python's GIL, so no thread of ours can run meanwhile and TensorFlow offers no
public timeout for it (CommunicationOptions' timeout covers collectives only).
Hence the order: every worker first listens on its own TF_CONFIG port and
greets its peers there (plain TCP, no TensorFlow), and only once every pair of
workers has greeted each other does each close that port and start
TensorFlow's server on it.  A peer that vanishes in between is caught by a
small watchdog process (`watchdog`).
"""

import contextlib
import dataclasses
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time

from keras_rnn_lab.errors import RunError, UsageError
from keras_rnn_lab.training.command_line import program

PEER_TIMEOUT_VARIABLE = "KERAS_RNN_LAB_PEER_TIMEOUT"
DEFAULT_PEER_TIMEOUT = 60.0  # seconds: time to start the same command on the other machines by hand
TF_CONFIG_EXAMPLE = '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'
_EXCHANGE_TIMEOUT = 5.0  # seconds for one greeting; a peer that takes longer is retried
_RETRY_INTERVAL = 0.25  # seconds between rounds of calls to the peers not yet met
STRATEGY_START = 10.0  # seconds at least for the strategy's start once all have met (1-3 s here), whatever the timeout


def peer_timeout_seconds(value=None):
    """How long to wait for the peers: `value` (seconds, e.g. --peer-timeout's),
    else KERAS_RNN_LAB_PEER_TIMEOUT, else DEFAULT_PEER_TIMEOUT; a UsageError
    naming the source unless it is a number > 0."""
    source = "argument `peer_timeout`"
    if value is None:
        value = os.environ.get(PEER_TIMEOUT_VARIABLE, "").strip()
        if not value:
            return DEFAULT_PEER_TIMEOUT
        source = PEER_TIMEOUT_VARIABLE
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if isinstance(value, bool) or not (seconds > 0 and math.isfinite(seconds)):
        raise UsageError(f"{source}: expected a number of seconds > 0; received {value!r}")
    return seconds


@dataclasses.dataclass(frozen=True)
class Cluster:
    """TF_CONFIG, checked: every worker's "host:port" and this worker's index."""

    workers: tuple
    index: int

    @property
    def peers(self):
        """(index, address) of every other worker."""
        return tuple((i, address) for i, address in enumerate(self.workers) if i != self.index)


_MISSING = object()


def read_tf_config(text=None):
    """The Cluster TF_CONFIG (or `text`) describes, or a UsageError naming
    TF_CONFIG, what arrived and what was expected.  Only "worker" jobs: worker
    0 is the chief (it writes the metrics, see `fit_distributed`)."""
    text = os.environ.get("TF_CONFIG", "") if text is None else text
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(
            f"TF_CONFIG: expected JSON such as {TF_CONFIG_EXAMPLE}; received {_shorten(repr(text))} "
            f"({error.msg} at character {error.pos})"
        ) from None
    if not isinstance(config, dict):
        raise UsageError(f"TF_CONFIG: expected a JSON object such as {TF_CONFIG_EXAMPLE}; received {_shorten(text)}")
    cluster = config.get("cluster", _MISSING)
    workers = cluster.get("worker", _MISSING) if isinstance(cluster, dict) else _MISSING
    if not (isinstance(workers, list) and workers):
        raise UsageError(f'TF_CONFIG: expected "cluster": {{"worker": ["host:port", ...]}}; received {_json(cluster)}')
    if set(cluster) != {"worker"}:
        raise UsageError(
            f'TF_CONFIG: expected only "worker" jobs in "cluster" (worker 0 is the chief); '
            f"received the jobs {json.dumps(sorted(cluster))}"
        )
    for address in workers:
        if not _is_address(address):
            raise UsageError(
                f'TF_CONFIG: expected every "worker" as "host:port" (port 1-65535); received {_json(address)}'
            )
        if workers.count(address) > 1:
            raise UsageError(f'TF_CONFIG: expected one address per worker; received {address!r} twice in "worker"')
    task = config.get("task", _MISSING)
    kind = task.get("type", _MISSING) if isinstance(task, dict) else _MISSING
    index = task.get("index", _MISSING) if isinstance(task, dict) else _MISSING
    if kind != "worker" or isinstance(index, bool) or not isinstance(index, int):
        raise UsageError(f'TF_CONFIG: expected "task": {{"type": "worker", "index": N}}; received {_json(task)}')
    if not 0 <= index < len(workers):
        raise UsageError(
            f'TF_CONFIG: expected a "task" "index" from 0 to {len(workers) - 1} (the cluster lists {len(workers)} '
            f"workers); received {index}"
        )
    return Cluster(tuple(workers), index)


def _is_address(value):
    host, _, port = value.rpartition(":") if isinstance(value, str) else ("", "", "")
    return bool(host) and port.isdigit() and 1 <= int(port) <= 65535


def _json(value):
    return "nothing" if value is _MISSING else _shorten(json.dumps(value))


def _shorten(text, limit=200):
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


def wait_for_peers(cluster, timeout):
    """Return once this worker and every other one in `cluster` have greeted
    each other on their TF_CONFIG ports; a RunError after `timeout` seconds
    naming each peer not met and why.

    Each worker listens on its own port while it calls the others, and keeps
    listening until it has met them all, so the workers may start in any
    order: for every pair not yet met both are still listening.  A greeting
    is three lines (hello, hello back, met): the caller counts the pair as met
    once it has the answer, the one called once it has the caller's "met".
    """
    if not cluster.peers:
        return
    meeting = _Meeting(cluster)
    server = meeting.listen()
    stop = threading.Event()
    serving = threading.Thread(target=meeting.serve, args=(server, stop), daemon=True)
    serving.start()
    deadline = time.monotonic() + timeout
    try:
        while meeting.not_met() and meeting.conflict is None and time.monotonic() < deadline:
            for index, address in meeting.not_met():
                meeting.call(index, address, min(_EXCHANGE_TIMEOUT, max(deadline - time.monotonic(), 0.1)))
            if meeting.not_met():
                time.sleep(_RETRY_INTERVAL)
    finally:
        stop.set()
        serving.join()
        server.close()
    if meeting.conflict is not None:
        raise RunError(meeting.conflict)
    if meeting.not_met():
        raise RunError(
            unreachable_message(cluster, timeout, {peer: meeting.problems.get(peer[0]) for peer in meeting.not_met()})
        )


def unreachable_message(cluster, seconds, problems):
    """The two lines a worker says when it gives up on the peers in `problems` ({(index, address): why})."""
    peers = "; ".join(
        f"worker {index} at {address}" + (f" ({why})" if why else "") for (index, address), why in problems.items()
    )
    return (
        f"worker {cluster.index} of {len(cluster.workers)} (TF_CONFIG) waited {seconds:g} s for its peers and could "
        f"not reach {peers}.\nStart the same command with each worker's TF_CONFIG on every machine, or wait longer: "
        f"--peer-timeout SECONDS or {PEER_TIMEOUT_VARIABLE}=SECONDS (default {DEFAULT_PEER_TIMEOUT:g})."
    )


class _Meeting:
    """One worker's side of `wait_for_peers`: who it has met, and why not the others yet."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.hello = _line({"keras_rnn_lab_worker": cluster.index, "workers": list(cluster.workers)})
        self.met = set()  # peer indices
        self.problems = {}  # peer index -> why it has not been met (the latest reason)
        self.conflict = None  # a peer with another cluster: waiting will not help
        self.lock = threading.Lock()

    def not_met(self):
        with self.lock:
            return [(index, address) for index, address in self.cluster.peers if index not in self.met]

    def listen(self):
        address = self.cluster.workers[self.cluster.index]
        port = int(address.rpartition(":")[2])
        try:
            if socket.has_dualstack_ipv6():
                return socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
            return socket.create_server(("", port))
        except OSError as error:
            raise RunError(
                f"TF_CONFIG: worker {self.cluster.index} cannot listen on its address {address}: "
                f"{error.strerror or error}; expected a port no other program uses"
            ) from None

    def serve(self, server, stop):
        """Answer the peers that call, until `stop` is set."""
        server.settimeout(_RETRY_INTERVAL)
        while not stop.is_set():
            try:
                connection, _ = server.accept()
            except OSError:  # a timeout: look at `stop` again
                continue
            with connection:
                connection.settimeout(_EXCHANGE_TIMEOUT)
                try:
                    hello = _read_line(connection)
                    if _is_greeting(hello):
                        connection.sendall(self.hello)  # even to a conflicting peer, so that it stops too
                        peer = self._check(hello, None)
                        if peer is not None and _read_line(connection) == {"met": True}:
                            self._meet(peer)
                except (OSError, ValueError):
                    pass  # the caller retries

    def call(self, index, address, timeout):
        """Greet worker `index` at `address`; note the problem when that fails."""
        host, _, port = address.rpartition(":")
        try:
            connection = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        except socket.gaierror:
            self.problems[index] = f"unknown host {host!r}"
            return
        except ConnectionRefusedError:
            self.problems[index] = "nothing listens there yet"
            return
        except TimeoutError:
            self.problems[index] = "no answer"
            return
        except OSError as error:
            self.problems[index] = error.strerror or str(error)
            return
        with connection:
            try:
                connection.sendall(self.hello)
                answer = _read_line(connection)
            except (OSError, ValueError):
                answer = None
            if not _is_greeting(answer):
                self.problems[index] = (
                    "something accepts connections there, but it is no keras-rnn-lab worker waiting for its peers: "
                    "another program, or a worker started long before this one"
                )
                return
            if self._check(answer, index) is not None:
                try:
                    connection.sendall(_line({"met": True}))
                except OSError as error:
                    self.problems[index] = error.strerror or str(error)
                    return
                self._meet(index)

    def _check(self, hello, index):
        """The index of the worker that sent `hello` (None if it is no greeting
        from worker `index`, any worker when None); notes a conflict when its cluster differs."""
        if not _is_greeting(hello):
            return None
        sender = hello["keras_rnn_lab_worker"]
        if hello.get("workers") != list(self.cluster.workers):
            self.conflict = (
                f"TF_CONFIG: worker {sender} lists the workers {hello.get('workers')} and this worker "
                f"({self.cluster.index}) lists {list(self.cluster.workers)}; expected the same cluster on every worker"
            )
            return None
        if sender == self.cluster.index or not 0 <= sender < len(self.cluster.workers) or index not in (None, sender):
            self.conflict = (
                f"TF_CONFIG: worker {self.cluster.index} at {self.cluster.workers[self.cluster.index]} was greeted by "
                f"a worker with task index {sender}; expected each worker to have its own index"
            )
            return None
        return sender

    def _meet(self, index):
        with self.lock:
            self.met.add(index)


def _is_greeting(message):
    return isinstance(message, dict) and type(message.get("keras_rnn_lab_worker")) is int


def _line(message):
    return (json.dumps(message) + "\n").encode()


def _read_line(connection, limit=65536):
    """The JSON object on the next line from `connection`; ValueError when it is something else."""
    data = b""
    while not data.endswith(b"\n"):
        chunk = connection.recv(4096)
        if not chunk or len(data) > limit:
            raise ValueError("no greeting")
        data += chunk
    return json.loads(data)


_WATCHDOG_SCRIPT = """
import os, select, signal, sys
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
if not select.select([sys.stdin], [], [], seconds)[0]:  # neither done (a line) nor gone (end of file)
    print(message, file=sys.stderr, flush=True)
    os.kill(parent, signal.SIGKILL)  # TensorFlow catches SIGTERM and goes on waiting
"""


@contextlib.contextmanager
def watchdog(seconds, message):
    """Inside it, a call that has not returned after `seconds` ends the process
    (exit status 137, SIGKILL) once a separate small process has printed
    `message`: the strategy's constructor holds the GIL, so no thread could."""
    command = os.path.basename(sys.argv[0])
    label = f"{program(command if command and not command.startswith('-') else 'python')}: error: "
    process = subprocess.Popen(
        [sys.executable, "-c", _WATCHDOG_SCRIPT, str(os.getpid()), str(seconds), label + message], stdin=subprocess.PIPE
    )
    try:
        yield
    finally:
        process.stdin.close()  # end of file: the watchdog exits quietly
        process.wait()
