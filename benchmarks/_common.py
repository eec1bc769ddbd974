# Authors: The sklearn-optlr developers
# SPDX-License-Identifier: BSD-3-Clause

"""Shared helpers for the benchmarks: the machine's description and timing."""

import datetime
import hashlib
import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path

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


ROOT = Path(__file__).resolve().parents[1]


def source_fingerprint():
    """The package's git commit, whether its files differ from it, and a hash of them."""
    sources = sorted((ROOT / "sklearn_optlr").glob("*.py"))
    digest = hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:12]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "sklearn_optlr"], cwd=ROOT,
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return f"sources {digest}"
    return f"commit {commit}{' with uncommitted changes' if dirty else ''}, sources {digest}"


def csv_table(header, rows):
    """An rst csv-table of string cells."""
    lines = [".. csv-table::", "   :header: " + ", ".join(f'"{h}"' for h in header), ""]
    lines += ["   " + ", ".join(f'"{cell}"' for cell in row) for row in rows]
    return "\n".join(lines)


def write_results(path, provenance, text):
    """Write a results page: ``Measured <provenance>``, then ``text``; say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"Measured {provenance}\n\n{text}\n")
    print(f"written to {path}")


def seconds(function):
    """Wall-clock seconds of one call of ``function()``."""
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def median(values):
    return float(np.median(values)) if len(values) else float("nan")
