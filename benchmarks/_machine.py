"""One line naming the machine a benchmark ran on.

The machines this project is measured on vary (AMD EPYC Zen 3 and Zen 4, Intel
Xeon with AVX-512 and AMX), and recurrent-layer speed ratios move with the CPU's
vector units, so every benchmark records the CPU model and its widest SIMD.
"""

from __future__ import annotations

import os
import platform


def describe() -> str:
    """E.g. ``"Intel(R) Xeon(R) Processor, AVX-512+AMX, 2 cores"``."""
    name, flags = "", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and not name:
                    name = value.strip()
                elif key == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    name = name or platform.processor() or platform.machine()
    if "avx512f" in flags:
        simd = "AVX-512" + ("+AMX" if "amx_tile" in flags else "")
    elif "avx2" in flags:
        simd = "AVX2"
    else:
        simd = ""
    return ", ".join(x for x in (name, simd, f"{os.cpu_count()} cores") if x)


if __name__ == "__main__":
    print(describe())
