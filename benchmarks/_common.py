"""Shared helpers for the benchmarks: the machine's description and timing."""

import datetime
import os
import platform
import time
from importlib import metadata

import numpy as np


def machine_description():
    """One paragraph naming the machine, the date and the library versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(line.split(":", 1)[1].strip() for line in cpuinfo if "model name" in line)
    except (OSError, StopIteration):
        pass
    versions = []
    for package in ["numpy", "scipy", "scikit-learn", "numba", "torch", "sklearn-optlr"]:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            pass
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{info['internal_api']} {info.get('version')} ({info.get('architecture')}, "
            f"{info['num_threads']} threads)"
            for info in threadpool_info()
            if info["user_api"] == "blas"
        )
    except ImportError:
        blas = "unknown BLAS"
    return (
        f"{datetime.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {', '.join(versions)}; BLAS: {blas}."
    )


def seconds(function):
    """Wall-clock seconds of one call of ``function()``."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median(values):
    return float(np.median(values)) if len(values) else float("nan")
