"""Native CPU kernels for the recurrent loops (C++, built on first use).

The sources in `seqkit/layers/native/` are compiled once per machine, the
first time a layer needs them, with the machine's C++ compiler (`$CXX`, else
`g++`) and TensorFlow's own compile and link flags, into a cache folder
(`$SEQKIT_NATIVE_CACHE`, else `$XDG_CACHE_HOME/seqkit/native`, else
`~/.cache/seqkit/native`). The cached library is named by a hash of the
sources, the TensorFlow version, the compiler and the CPU's feature flags, so
a change to any of them builds a new one; the build writes to a temporary
file and renames it into place, so a crash never leaves a broken library.

The kernels replace the XLA loops (`_tf_loops`, driven by `_tf_fast`) for
float32 SimpleRNN, LSTM and GRU (reset_after True or False), with or without a
mask, on CPU: one op runs the whole forward loop and one the backward loop,
each over shards of the batch in parallel, with a register-blocked matmul
whose recurrent kernel is packed once per call (train steps measured
0.54-0.84x Keras's; see benchmarks/RESULTS.md). Everything else, and every
graph that may be saved (see `_tf_fast._graph_may_be_saved`), keeps plain
TensorFlow ops: a SavedModel never depends on this library.

`SEQKIT_NATIVE=0` turns the kernels off; `SEQKIT_NATIVE_MARCH` names the
target CPU for the compiler's `-march` (default `native`; e.g. `haswell` for
AVX2 code that runs on older x86 machines). Where the build fails (no compiler,
an unknown platform) a warning says why once and the XLA loops run instead.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

_SOURCES = ("rnn_kernels.h", "rnn_kernels.cc", "rnn_ops.cc")
_DIR = Path(__file__).parent / "native"
_LOCK = threading.Lock()
_STATE: dict = {}


def enabled() -> bool:
    """Whether the native kernels may be used (`SEQKIT_NATIVE` is not "0")."""
    return os.environ.get("SEQKIT_NATIVE", "1") != "0"


def _cache_dir() -> Path:
    if os.environ.get("SEQKIT_NATIVE_CACHE"):
        return Path(os.environ["SEQKIT_NATIVE_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "seqkit" / "native"


def _cpu_flags() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    except OSError:
        pass
    return platform.processor()


def _compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx) is None:
        raise RuntimeError(f"no C++ compiler found (looked for {cxx!r}; set $CXX)")
    return cxx


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"`{' '.join(cmd[:3])} ...` failed: " + " | ".join(tail))


def _build() -> Path:
    import tensorflow as tf

    cxx = _compiler()
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True).stdout
    h = hashlib.sha256()
    for name in _SOURCES:
        h.update((_DIR / name).read_bytes())
    march = os.environ.get("SEQKIT_NATIVE_MARCH", "native")
    for part in (tf.__version__, version, platform.machine(), _cpu_flags(), march):
        h.update(part.encode())
    name = f"seqkit_rnn_{h.hexdigest()[:16]}.so"
    target = _cache_dir() / name
    if target.exists():
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if not os.access(target.parent, os.W_OK):
            raise OSError(f"{target.parent} is not writable")
    except OSError:  # a read-only home: build into the temporary folder instead
        target = (
            Path(tempfile.gettempdir())
            / f"seqkit-native-{getattr(os, 'getuid', lambda: 0)()}"
            / name
        )
        if target.exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        obj = os.path.join(tmp, "rnn_kernels.o")
        src = str(_DIR / "rnn_kernels.cc")
        # The arithmetic is tuned for this CPU; a compiler without -march=native
        # still gets a portable build.
        base = [cxx, "-std=c++17", "-O3", "-fPIC", "-c", src, "-o", obj]
        try:
            _run(base[:3] + [f"-march={march}"] + base[3:])
        except RuntimeError:
            _run(base)
        so = os.path.join(tmp, target.name)
        _run(
            [cxx, "-O2", "-fPIC", "-shared", "-w", str(_DIR / "rnn_ops.cc"), obj, "-o", so]
            + tf.sysconfig.get_compile_flags()
            + tf.sysconfig.get_link_flags()
        )
        os.replace(so, target)
    return target


def ops():
    """The loaded op library, or None where it is off or cannot be built."""
    if "ops" in _STATE:
        return _STATE["ops"]
    with _LOCK:
        if "ops" not in _STATE:
            lib = None
            if enabled():
                try:
                    import tensorflow as tf

                    lib = tf.load_op_library(str(_build()))
                except Exception as e:  # any failure: the XLA loops still work
                    warnings.warn(
                        f"seqkit: native recurrent kernels unavailable, using the XLA "
                        f"loops instead ({e})",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            _STATE["ops"] = lib
    return _STATE["ops"]
