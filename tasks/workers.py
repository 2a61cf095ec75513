"""``seqkit train ... --workers N`` and ``--strategy``: training across processes.

``--workers N`` starts N worker processes on this machine, each running the
same ``seqkit train`` command with its own ``TF_CONFIG`` (free localhost
ports), and prints their output line by line, each line prefixed with
``[worker i]``. Worker 0 is the chief: it alone writes the checkpoints and
the saved pipeline. If one worker fails, the others are stopped and the
launcher exits with the failed worker's status.

On many machines, set ``TF_CONFIG`` on each host (the same ``cluster``, each
its own ``task.index``) and run the same ``seqkit train`` command there; a
``TF_CONFIG`` in the environment makes ``seqkit train`` train with
``MultiWorkerMirroredStrategy`` (``--strategy multi-worker`` asks for it
explicitly and fails without ``TF_CONFIG``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

STRATEGIES = ("none", "mirrored", "multi-worker")


def add_arguments(parser) -> None:
    """The ``train`` options of this module."""
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="start N local worker processes (MultiWorkerMirroredStrategy over localhost)",
    )
    parser.add_argument(
        "--strategy",
        default=None,
        choices=STRATEGIES,
        help="tf.distribute strategy: none, mirrored (this machine's devices), multi-worker "
        "(the cluster in TF_CONFIG; the default when TF_CONFIG is set)",
    )


def check(args) -> None:
    """Refuses ``--workers`` below 1 or together with ``--strategy`` (ValueError)."""
    if args.workers is None:
        return
    if isinstance(args.workers, bool) or args.workers < 1:
        raise ValueError(f"--workers {args.workers}: expected a positive number of workers.")
    if args.strategy is not None:
        raise ValueError(
            f"--workers starts its own multi-worker strategy; drop --strategy {args.strategy} "
            "(or drop --workers and set TF_CONFIG yourself)."
        )
    if os.environ.get("TF_CONFIG", "").strip():
        raise ValueError(
            "--workers sets TF_CONFIG for the workers it starts, but TF_CONFIG is already set; "
            "unset it, or run the command without --workers on each host."
        )


def strategy_for(args):
    """The strategy ``seqkit train`` trains under (None: the default one)."""
    name = args.strategy
    if name is None:
        name = "multi-worker" if os.environ.get("TF_CONFIG", "").strip() else "none"
    if name == "none":
        return None
    if name == "mirrored":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy()
    from seqkit.distributed import multi_worker_strategy

    return multi_worker_strategy()


def is_chief() -> bool:
    """Whether this process is worker 0 of its cluster (or trains alone)."""
    from seqkit.distributed import read_tf_config

    cluster = read_tf_config()
    return cluster is None or cluster.is_chief


def free_ports(n: int) -> list[int]:
    """``n`` distinct free TCP ports on localhost."""
    sockets = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("localhost", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_configs(n: int) -> list[str]:
    """The ``TF_CONFIG`` of each of ``n`` local workers."""
    cluster = {"worker": [f"localhost:{p}" for p in free_ports(n)]}
    return [
        json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(n)
    ]


def _without_workers(argv: list[str]) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def launch(args, argv: list[str]) -> int:
    """Runs the ``train`` command ``argv`` in ``args.workers`` local workers; their exit status."""
    check(args)
    command = [sys.executable, "-m", "tasks.cli", *_without_workers(argv)]
    procs = []
    for config in tf_configs(args.workers):
        env = {**os.environ, "TF_CONFIG": config, "PYTHONUNBUFFERED": "1"}
        procs.append(
            subprocess.Popen(
                command,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                start_new_session=True,
            )
        )
    lock = threading.Lock()

    def relay(i, proc):
        for line in proc.stdout:
            with lock:
                print(f"[worker {i}] {line}", end="", flush=True)

    threads = [
        threading.Thread(target=relay, args=(i, p), daemon=True) for i, p in enumerate(procs)
    ]
    for t in threads:
        t.start()
    status = 0
    try:
        pending = set(range(len(procs)))
        while pending:
            for i in sorted(pending):
                try:
                    code = procs[i].wait(timeout=0.5)
                except subprocess.TimeoutExpired:
                    continue
                pending.discard(i)
                if code != 0 and status == 0:
                    status = code if code > 0 else 1
                    _stop(procs, f"worker {i} exited with status {code}")
    except KeyboardInterrupt:
        _stop(procs, "interrupted", signal.SIGINT)
        status = 130
    for t in threads:
        t.join(timeout=5)
    return status


def _stop(procs, why: str, sig=signal.SIGTERM) -> None:
    """Stops every running worker (a worker left alone waits on collectives forever)."""
    running = [p for p in procs if p.poll() is None]
    if running:
        print(f"seqkit train: {why}; stopping the other workers.", file=sys.stderr, flush=True)
    for p in running:
        os.killpg(p.pid, sig)
    for p in running:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)  # blocked in a collective: only SIGKILL ends it
            p.wait()
