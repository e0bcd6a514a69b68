"""Worker processes and threads for data work: pools whose workers die with their parent, and a prefetching
iterator."""

from __future__ import annotations

import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def end_with_parent(signum: int = signal.SIGKILL) -> None:
    """Ask the kernel to send ``signum`` to this process when its parent ends, even by SIGKILL, which no handler
    in the parent sees (Linux; elsewhere a no-op). Call it in the child: a pool initializer or a preexec_fn."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _die_with_parent(parent_pid: int, initializer: Callable | None, initargs: tuple) -> None:
    """Pool worker start-up: end this worker when the process that made the pool ends, however it ends."""
    end_with_parent()
    # Portable fallback, and the race where the parent died before prctl: once orphaned, the parent pid changes.
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def process_pool(workers: int, initializer: Callable | None = None, initargs: tuple = ()) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` of ``workers`` spawned processes that end when this process ends, even by SIGKILL.

    spawn, not fork: the caller may have started threads (torch, LoadGen) that a fork would copy mid-state.
    On Linux the death signal is tied to the thread that starts the workers, so use the pool from the thread
    that made it (the main thread in every caller here).
    """
    import multiprocessing

    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent, initargs=(os.getpid(), initializer, initargs))


class _Failure:
    def __init__(self, exc: Exception) -> None:
        self.exc = exc


def prefetch(iterable: Iterable, depth: int = 2) -> Iterator:
    """Yield ``iterable``'s items, producing up to ``depth`` ahead on a background thread.

    Work that releases the GIL while it runs (image decoding and resizing, file reads) then overlaps the
    consumer's, e.g. a training step. An exception in the producer is raised in the consumer; a consumer that
    stops early stops the producer.
    """
    items: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in iterable:
                if not put(item):
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Failure(exc))
            return
        put(end)

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while (item := items.get()) is not end:
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join(timeout=10)
