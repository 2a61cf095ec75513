"""Multi-worker training on ``tf.distribute.MultiWorkerMirroredStrategy``.

A cluster is set by ``TF_CONFIG`` on every process, as TensorFlow defines it::

    {"cluster": {"worker": ["host1:12345", "host2:12345"]},
     "task": {"type": "worker", "index": 0}}

(a ``"chief"`` job counts as worker 0). :func:`multi_worker_strategy` reads and
checks it, waits until every worker answers on its port (``SEQKIT_WORKER_TIMEOUT``
seconds, default 120, then :class:`WorkerTimeoutError` names the missing ones),
and builds the strategy. The training engine (:mod:`seqkit.training`) then

- shards in-memory data (and validation data) by data: each global batch of
  ``batch_size`` examples is split across the workers, so N workers over a
  global batch train the same steps as one process over that batch (an
  epoch's last, partial batch is cut to a multiple of N examples:
  :func:`even_batches`);
- shards a training stream (``TextStream``, ``TextFileStream``) by chunk:
  worker i of N parses and encodes only chunks i, i + N, ... in batches of
  ``batch_size / N``, so a global step takes ``batch_size / N`` examples from
  each worker's chunks. Each worker keeps full batches only and all take the
  same number, the fewest any worker has (:func:`worker_part`,
  :func:`own_batches`): a few examples per chunk are left out of each epoch,
  and the steps are not one process's;
- lets only the chief (worker 0) keep checkpoints, saves and exports; the
  others write into temporary folders that are deleted (:func:`write_path`);
- agrees across workers on the run key, the resume epoch and the time limit.

Preprocessing that learns from data (vocabularies, label sets, scalers) is
computed by every worker over the full training data, and the run key (which
hashes it) is checked to be equal on all workers before training starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass

from seqkit.errors import DataError, SeqkitError, UsageError

__all__ = [
    "Cluster",
    "WorkerTimeoutError",
    "read_tf_config",
    "multi_worker_strategy",
    "wait_for_workers",
    "cluster_of",
    "prepare_model",
    "shard",
    "even_batches",
    "worker_part",
    "own_batches",
    "agree",
    "agree_max",
    "mean",
    "write_path",
    "activate",
    "active",
]

DEFAULT_TIMEOUT = 120.0


class WorkerTimeoutError(SeqkitError, TimeoutError):
    """A worker of the cluster did not answer within the timeout (a ``TimeoutError``,
    and a ``SeqkitError`` so that ``seqkit train`` prints it as one line)."""


@dataclass(frozen=True)
class Cluster:
    """The workers' ``host:port`` addresses and this process's index (0 is the chief)."""

    workers: tuple[str, ...]
    index: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def size(self) -> int:
        return len(self.workers)


def _check_address(address, where: str) -> str:
    if not isinstance(address, str) or address.count(":") < 1:
        raise UsageError(f"TF_CONFIG: {where} is {address!r}; expected 'host:port'.")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(
            f"TF_CONFIG: {where} is {address!r}; expected 'host:port' with a port in 1-65535."
        )
    return address


def read_tf_config(text: str | None = None) -> Cluster | None:
    """The cluster set by ``TF_CONFIG`` (or ``text``), or None when it is unset or empty.

    Raises:
        UsageError: malformed JSON, no ``cluster`` or ``task``, an address that is
            not ``host:port``, a job other than chief/worker, or an index out of range.
    """
    if text is None:
        text = os.environ.get("TF_CONFIG", "")
    if not text.strip():
        return None
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"TF_CONFIG is not valid JSON ({error}).") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise UsageError(
            'TF_CONFIG has no "cluster" object; expected {"cluster": {"worker": '
            '["host:port", ...]}, "task": {"type": "worker", "index": i}}.'
        )
    task = config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise UsageError('TF_CONFIG has no "task" object with "type" and "index".')
    cluster = config["cluster"]
    unknown = sorted(set(cluster) - {"chief", "worker"})
    if unknown:
        raise UsageError(
            f"TF_CONFIG: jobs {unknown} are not supported; seqkit trains with 'chief' and "
            "'worker' jobs only (MultiWorkerMirroredStrategy)."
        )
    jobs = {}
    for job in ("chief", "worker"):
        addresses = cluster.get(job, [])
        if not isinstance(addresses, list):
            raise UsageError(f"TF_CONFIG: cluster.{job} must be a list of 'host:port'.")
        jobs[job] = [_check_address(a, f"cluster.{job}[{i}]") for i, a in enumerate(addresses)]
    if len(jobs["chief"]) > 1:
        raise UsageError("TF_CONFIG: a cluster has at most one chief.")
    kind, index = task["type"], task["index"]
    if kind not in ("chief", "worker"):
        raise UsageError(f"TF_CONFIG: task.type is {kind!r}; expected 'chief' or 'worker'.")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(jobs[kind]):
        raise UsageError(
            f"TF_CONFIG: task.index is {index!r}, but cluster.{kind} has {len(jobs[kind])} entries."
        )
    workers = tuple(jobs["chief"] + jobs["worker"])
    position = index if kind == "chief" else len(jobs["chief"]) + index
    return Cluster(workers, position)


def _answers(address: str) -> bool:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1.0):
            return True
    except OSError:
        return False


def wait_for_workers(cluster: Cluster, timeout: float | None = None) -> None:
    """Waits until every other worker answers on its port, or raises WorkerTimeoutError.

    While waiting, this process listens on its own port, so that the others
    see it (TensorFlow's server takes the port over once the strategy is built).
    """
    if timeout is None:
        timeout = float(os.environ.get("SEQKIT_WORKER_TIMEOUT", DEFAULT_TIMEOUT))
    own = cluster.workers[cluster.index]
    host, _, port = own.rpartition(":")
    listener = socket.socket(socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(("" if host not in ("localhost", "127.0.0.1") else host, int(port)))
    except OSError as error:
        listener.close()
        raise UsageError(
            f"Worker {cluster.index} cannot listen on {own} ({error}); is another process "
            "using that port?"
        ) from None
    listener.listen(16)
    stop = threading.Event()

    def accept():
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = listener.accept()
                conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    missing = [a for i, a in enumerate(cluster.workers) if i != cluster.index]
    try:
        while missing:
            missing = [a for a in missing if not _answers(a)]
            if missing and time.monotonic() > deadline:
                names = ", ".join(f"worker {cluster.workers.index(a)} ({a})" for a in missing)
                raise WorkerTimeoutError(
                    f"Timed out after {timeout:g} s waiting for {names} to join the cluster; "
                    "start it with the same TF_CONFIG cluster and its own task index, or raise "
                    "SEQKIT_WORKER_TIMEOUT."
                )
            if missing:
                time.sleep(0.25)
        time.sleep(1.0)  # let the others see this listener before it closes
    finally:
        stop.set()
        thread.join()
        listener.close()


def multi_worker_strategy(timeout: float | None = None):
    """A ``MultiWorkerMirroredStrategy`` for the cluster in ``TF_CONFIG``, once every worker answers.

    Raises:
        UsageError: TF_CONFIG is unset or malformed.
        WorkerTimeoutError: a worker did not answer within ``timeout`` seconds
            (default: ``$SEQKIT_WORKER_TIMEOUT``, else 120).
    """
    import tensorflow as tf

    cluster = read_tf_config()
    if cluster is None:
        raise UsageError(
            "TF_CONFIG is not set; multi-worker training needs it on every worker "
            "(or use `seqkit train --workers N` to start N local workers)."
        )
    wait_for_workers(cluster, timeout)
    return tf.distribute.MultiWorkerMirroredStrategy()


def cluster_of(strategy) -> Cluster | None:
    """The multi-worker cluster ``strategy`` spans, or None (no strategy, or one process)."""
    resolver = getattr(strategy, "cluster_resolver", None)  # (None on one-process strategies)
    if resolver is None:
        return None
    spec = resolver.cluster_spec().as_dict()
    workers = list(spec.get("chief", [])) + list(spec.get("worker", []))
    if len(workers) < 2:
        return None
    kind, index = resolver.task_type, resolver.task_id
    position = index if kind == "chief" else len(spec.get("chief", [])) + index
    return Cluster(tuple(workers), int(position))


def _local_symbolic_build(model):
    """keras#20585: Keras builds a model under MultiWorkerMirroredStrategy by reducing
    a first batch across workers with ``axis=None``, which fails on PerReplica values.
    This builds on this worker's own first batch instead."""
    import tensorflow as tf
    from keras.src import tree

    def build(iterator=None, data_batch=None):
        strategy = model.distribute_strategy
        if iterator is not None:
            for _, _, it in iterator:
                batch = next(it)
                data_batch = tree.map_structure(
                    lambda x: (
                        strategy.experimental_local_results(x)[0]
                        if isinstance(x, tf.distribute.DistributedValues)
                        else x
                    ),
                    batch,
                )
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    return build


_patched = False


def _patch_reduce() -> None:
    """keras#20585 too: Keras averages each worker's logs with ``axis=0``, which fails
    on the 0-d loss; 0-d values are averaged with ``axis=None``."""
    global _patched
    if _patched:
        return
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(
            strategy
        ):
            from keras.src import tree

            def one(v):
                rank = getattr(getattr(v, "shape", None), "rank", None)
                if rank is None and hasattr(v, "values"):
                    rank = v.values[0].shape.rank
                return strategy.reduce("MEAN", v, axis=None if rank == 0 else 0)

            return tree.map_structure(one, values)
        return original(values, strategy, reduction)

    tf_trainer.reduce_per_replica = reduce_per_replica
    _patched = True


def _clip_after_all_reduce(optimizer) -> None:
    """Keras clips each replica's gradients before summing them over the replicas,
    so ``clipnorm`` under a strategy clips something else than one process does.
    This sums first, then clips the summed (global-batch) gradients."""
    import keras
    import tensorflow as tf

    if not (optimizer.clipnorm or optimizer.global_clipnorm or optimizer.clipvalue):
        return
    clip = optimizer._clip_gradients
    optimizer._clip_gradients = lambda grads: grads

    def update(grads, trainable_variables, learning_rate):
        variables = [v.value if isinstance(v, keras.Variable) else v for v in trainable_variables]
        summed = optimizer._all_reduce_sum_gradients(list(zip(grads, variables, strict=True)))
        clipped = clip([g for g, _ in summed])
        tf.__internal__.distribute.interim.maybe_merge_call(
            optimizer._distributed_tf_update_step,
            optimizer._distribution_strategy,
            list(zip(clipped, variables, strict=True)),
            learning_rate,
        )

    optimizer._backend_update_step = update


def prepare_model(model, strategy) -> None:
    """Fixes a compiled model for training under ``strategy`` (several replicas):
    gradients are clipped after the all-reduce, as one process clips them; under
    multi-worker training also keras#20585 (the PerReplica build and log reduction)."""
    if strategy is None or strategy.num_replicas_in_sync < 2:
        return
    _clip_after_all_reduce(model.optimizer)
    if cluster_of(strategy) is None:
        return
    _patch_reduce()
    model._maybe_symbolic_build = _local_symbolic_build(model)


def even_batches(dataset, n: int):
    """Batches of ``dataset`` cut to a multiple of ``n`` examples (empty ones dropped).

    TensorFlow splits a global batch of b examples over n workers as evenly as
    it can, and each worker averages its own loss: b a multiple of n weighs
    every example as one process does. Only an epoch's last, partial batch
    loses examples (fewer than n; a different few each epoch when shuffled).
    """
    import numpy as np
    import tensorflow as tf

    def size(*batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0]

    def cut(*batch):
        keep = size(*batch) // n * n
        out = tf.nest.map_structure(lambda t: t[:keep], batch)
        return out if len(batch) > 1 else out[0]

    kept = dataset.map(cut).filter(lambda *batch: size(*batch) > 0)
    # A known length: with an unknown one Keras counts one more optimizer step
    # per epoch (the step that finds the data exhausted), which shifts Adam.
    count = int(kept.reduce(np.int64(0), lambda total, _: total + 1))
    return kept.apply(tf.data.experimental.assert_cardinality(count))


def shard(dataset, cluster: Cluster | None):
    """``dataset`` sharded by data: each global batch split evenly across the workers."""
    if cluster is None:
        return dataset
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return even_batches(dataset, cluster.size).with_options(options)


def worker_part(data, batch_size: int, strategy):
    """``(data, batch_size, own)``: what this worker trains on.

    Under a multi-worker ``strategy`` a stream (data with a ``shard`` method) is
    sharded by chunk: this worker's chunks, in batches of ``batch_size / N``,
    and ``own`` True (the engine then distributes it with :func:`own_batches`).
    Anything else comes back as it is (sharded by data later, :func:`shard`).

    Raises UsageError for a ``batch_size`` that N does not divide, DataError
    for a stream with fewer chunks than workers.
    """
    cluster = cluster_of(strategy)
    if cluster is None or not hasattr(data, "shard"):
        return data, batch_size, False
    n = cluster.size
    if batch_size % n:
        raise UsageError(
            f"batch_size={batch_size} is not a multiple of the {n} workers: a stream is "
            f"sharded by chunk, and each worker gives batch_size / {n} examples to every "
            f"step. Pass batch_size={max(n, batch_size // n * n)}."
        )
    return data.shard(cluster.index, n), batch_size // n, True


def own_batches(dataset, strategy):
    """A worker's own ``dataset`` (full per-worker batches, known length) distributed
    as it is: no data sharding, every worker the same number of batches, the fewest.
    """
    import tensorflow as tf

    count = int(dataset.cardinality())
    fewest = int(-agree_max(strategy, -count))
    if fewest < 1:
        raise DataError(
            "A worker's chunks of the stream hold no full batch of batch_size / workers "
            "examples: give more data, smaller chunks, or a smaller batch_size."
        )
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    part = dataset.take(fewest).apply(tf.data.experimental.assert_cardinality(fewest))
    part = part.with_options(options)
    return strategy.distribute_datasets_from_function(lambda context: part)


def _gather(strategy, value: float) -> list[float]:
    """Every worker's ``value``, in worker order (one collective)."""
    import tensorflow as tf

    tensor = tf.constant([value], tf.float64)
    gathered = strategy.gather(strategy.run(lambda: tensor), axis=0)
    return [float(v) for v in gathered.numpy()]


def _all_reduce(strategy, value: float, op: str) -> float:
    import tensorflow as tf

    if op == "max":  # ReduceOp has only SUM and MEAN: gather, then take the max
        return max(_gather(strategy, value))
    ops = {"sum": tf.distribute.ReduceOp.SUM, "mean": tf.distribute.ReduceOp.MEAN}
    tensor = tf.constant(value, tf.float64)
    return float(strategy.reduce(ops[op], strategy.run(lambda: tensor), axis=None))


def agree(strategy, text: str, what: str) -> None:
    """Raises UsageError unless every worker passes the same ``text`` (e.g. the run key).

    One collective on every worker: all of them raise together."""
    import zlib

    codes = _gather(strategy, float(zlib.crc32(text.encode()) % 2**31))
    if len(set(codes)) > 1:
        raise UsageError(
            f"The workers disagree on {what}: every worker must run the same command on "
            "the same data (same files, same arguments, same seqkit version)."
        )


def agree_max(strategy, value: float) -> float:
    """The largest ``value`` over the workers."""
    return _all_reduce(strategy, float(value), "max")


def mean(strategy, value: float) -> float:
    """The mean of ``value`` over the workers."""
    return _all_reduce(strategy, float(value), "mean")


_active: Cluster | None = None


def activate(cluster: Cluster | None) -> None:
    """Records the cluster this process trains in (saves and exports then follow it)."""
    global _active
    _active = cluster


def active() -> Cluster | None:
    """The cluster this process trained in, or None."""
    return _active


@contextlib.contextmanager
def write_path(path: str, cluster: Cluster | None = None):
    """Yields where this worker writes ``path``: the path itself on the chief (or
    without a cluster), a temporary folder elsewhere, deleted afterwards.

    ``cluster`` defaults to the :func:`active` one.
    """
    cluster = cluster if cluster is not None else _active
    if cluster is None or cluster.is_chief:
        yield path
        return
    tmp = tempfile.mkdtemp(prefix=f"seqkit-worker{cluster.index}-")
    try:
        yield os.path.join(tmp, os.path.basename(os.fspath(path).rstrip("/")) or "out")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
