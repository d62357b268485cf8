"""Training on several devices or machines with tf.distribute (TensorFlow only).

Keras 3's `model.fit` works under `tf.distribute.MirroredStrategy` (one
machine) but fails under `MultiWorkerMirroredStrategy` ("Attempt to convert a
value (PerReplica ...)", keras-team/keras#20585).  `fit_distributed` is the
custom training step that works under both, written once for every recipe:
the recipe's own compiled model (built inside the strategy's scope, so its
variables are mirrored), its own loss (`model.compute_loss`, which already
divides by the number of replicas) and optimizer, one `strategy.run` per
global batch of `strategy.experimental_distribute_dataset`.  Gradients are
summed across replicas by the optimizer, so every worker ends every step with
the same weights.

Multi-worker: every worker runs the same command with its own TF_CONFIG, e.g.
on two machines (or two processes on 127.0.0.1):

    TF_CONFIG='{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}'

Worker 0 is the chief: it writes the metrics CSV and the model; the others
write theirs beside it (`-worker1` ...), which is also how the test checks
that the weights agree.

Before building MultiWorkerMirroredStrategy, `make_strategy` waits for the
other workers (`keras_rnn_lab.training.peers`: at most `peer_timeout`
seconds, 60 unless --peer-timeout or KERAS_RNN_LAB_PEER_TIMEOUT says
otherwise) and raises a RunError naming those it could not reach.
"""

import csv
import json
import os

import tensorflow as tf

from keras_rnn_lab.errors import UsageError
from keras_rnn_lab.training import model_files
from keras_rnn_lab.training.peers import (  # noqa: F401  (the multi-worker API, here too)
    DEFAULT_PEER_TIMEOUT,
    PEER_TIMEOUT_VARIABLE,
    STRATEGY_START,
    TF_CONFIG_EXAMPLE,
    Cluster,
    peer_timeout_seconds,
    read_tf_config,
    unreachable_message,
    wait_for_peers,
    watchdog,
)

STRATEGIES = ("mirrored", "multi-worker")


def make_strategy(name, peer_timeout=None):
    """The tf.distribute strategy `name` ("mirrored" or "multi-worker").

    "multi-worker" reads the cluster from TF_CONFIG (`read_tf_config`), waits
    up to `peer_timeout` seconds (`peer_timeout_seconds`) for the other
    workers and raises RunError naming those it could not reach.
    """
    if name not in STRATEGIES:
        raise UsageError(f"Argument `strategy` must be one of {STRATEGIES}; received {name!r}.")
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    seconds = peer_timeout_seconds(peer_timeout)
    if "TF_CONFIG" not in os.environ:
        raise UsageError(
            "Argument `strategy`: 'multi-worker' needs the TF_CONFIG environment variable (the cluster's workers "
            f"and this task's index), e.g. TF_CONFIG='{TF_CONFIG_EXAMPLE}'."
        )
    cluster = read_tf_config()
    if not cluster.peers:
        return tf.distribute.MultiWorkerMirroredStrategy()
    wait_for_peers(cluster, seconds)
    # All peers answered a moment ago; should one vanish now, TensorFlow would wait for ever (see training.peers).
    watch = max(seconds, STRATEGY_START)
    with watchdog(watch, unreachable_message(cluster, watch, dict.fromkeys(cluster.peers, "answered, then went away"))):
        return tf.distribute.MultiWorkerMirroredStrategy()


def task_index():
    """This worker's index in TF_CONFIG (0, the chief, when there is none)."""
    config = json.loads(os.environ.get("TF_CONFIG", "{}"))
    return int(config.get("task", {}).get("index", 0))


def fit_distributed(
    strategy, build_model, dataset, epochs, global_batch_size, log_path=None, checkpoint_path=None, verbose=1
):
    """Train the model `build_model()` returns (compiled) on `dataset` under
    `strategy`; returns (model, history {"loss": [per epoch]}).

    What `fit`'s callbacks would keep, per epoch: the chief appends the mean
    loss to the CSV `log_path`, and every worker saves the model to
    `checkpoint_path` (a .keras path; see `save`).

    dataset: a tf.data.Dataset of unbatched examples (x, y) or (x, y,
    sample_weight), shuffled as wanted; it is batched here to
    `global_batch_size` (split between the replicas; the last partial batch is
    dropped so every replica gets equal work).
    """
    with strategy.scope():
        model = build_model()
        model.optimizer.build(model.trainable_variables)
    options = tf.data.Options()
    # Each worker reads every element and keeps its share of each batch: works for
    # in-memory data, which is all the recipes have.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = dataset.batch(global_batch_size, drop_remainder=True).with_options(options)
    distributed = strategy.experimental_distribute_dataset(batches)

    def replica_step(*example):
        x, y, sample_weight = (*example, None) if len(example) == 2 else example
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
        gradients = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    @tf.function
    def train_step(example):
        per_replica = strategy.run(replica_step, args=example)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)  # each replica's share of the mean

    history = {"loss": []}
    for epoch in range(epochs):
        total, steps = 0.0, 0
        for example in distributed:
            total += float(train_step(example))
            steps += 1
        history["loss"].append(total / max(steps, 1))
        if verbose:
            print(f"Epoch {epoch + 1}/{epochs} - loss: {history['loss'][-1]:.4f} ({steps} steps)", flush=True)
        if log_path is not None and task_index() == 0:
            _append_row(log_path, {"epoch": epoch, "loss": history["loss"][-1]})
        if checkpoint_path is not None:
            save(model, checkpoint_path)
    return model, history


def _append_row(path, row):
    new = not os.path.exists(path)
    with open(path, "a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(row))
        if new:
            writer.writeheader()
        writer.writerow(row)


def worker_path(path):
    """Where this worker saves `path` (a .keras file): as given on the chief,
    "NAME-workerN.keras" on worker N."""
    index = task_index()
    return path if index == 0 else f"{path[: -len('.keras')]}-worker{index}.keras"


def save(model, path):
    """Every worker saves (collective reads need all of them), atomically and
    with the model's recipe recorded (`training.model_files`); see worker_path."""
    target = worker_path(path)
    model_files.save_model(model, target)
    return target
