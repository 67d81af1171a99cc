"""Entry point for uvicorn workers: ``stepup.web.factory:app`` (a factory)."""

from __future__ import annotations

import ctypes
import gc
import os
import sys

from fastapi import FastAPI

from stepup.web.app import create_app

# glibc's mallopt parameter, and its default: allocations at least this big are mapped
# on their own and given back to the system when freed.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 128 * 1024


def fixed_mmap_threshold() -> None:
    """Keep glibc's mmap threshold at its default instead of letting it rise.

    glibc raises the threshold to the size of any mapped block freed (up to 32 MiB), so
    after the first argon2 hash (a 19 MiB block: ``STEPUP_ARGON2_MEMORY_KIB``) every later
    one is carved from the heap of the thread that runs it and stays resident when
    freed: 19 MiB more per thread arena that ever checked a password. Fixed, each hash
    maps its block and gives it back (~10 ms more per hash; bench/README.md, "RSS").
    ``MALLOC_MMAP_THRESHOLD_`` in the environment, if set, wins.
    """
    if not sys.platform.startswith("linux") or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # a C library without mallopt: nothing to tune
        return
    mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)


def app() -> FastAPI:
    # Before the runtime's first argon2 hash (the hasher's dummy), and after the one
    # `serve` made while preparing the schema in this same process with one worker.
    fixed_mmap_threshold()
    # serve has migrated already; each worker only checks.
    built = create_app(migrate_on_start=False)
    # What is alive now (modules, mappers, routes) lives as long as the worker: kept out
    # of the cyclic collector's full passes, which otherwise walk it all again and
    # again under load and show as latency spikes.
    gc.collect()
    gc.freeze()
    return built
