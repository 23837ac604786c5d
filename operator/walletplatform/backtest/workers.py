"""The independent replays of one backtest (each strategy's floors, each simulated HPA) run on every
core this process may use: forked workers that inherit the replay instead of receiving a copy of it.

With one core, where fork is not available, or when this process runs other threads, calls run in
this process, one after the other; the figures are the same either way (every call is a pure function
of its arguments)."""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

Shared = TypeVar("Shared")
Result = TypeVar("Result")

_inherited: dict[str, Any] = {}  # in a worker: what the pool was made with


def _inherit(shared: object) -> None:
    _inherited["shared"] = shared


def _call(function: Callable[..., Result], *args: object) -> Result:
    return function(_inherited["shared"], *args)


def usable_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Workers(Generic[Shared]):
    """``submit(function, *args)`` runs ``function(shared, *args)`` in a worker; a context manager."""

    def __init__(self, shared: Shared, count: int | None = None) -> None:
        self._shared = shared
        count = usable_cores() if count is None else count
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        # Forking a process with other threads can copy a lock one of them holds: then stay in this one.
        if count > 1 and threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
            # Forked: the initializer's argument is inherited, not pickled, so a year of minutes is not copied.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                count, mp_context=multiprocessing.get_context("fork"), initializer=_inherit, initargs=(shared,)
            )

    def submit(self, function: Callable[..., Result], *args: object) -> concurrent.futures.Future[Result]:
        if self._pool is not None:
            # The workers are forked by the first submit, with a SIGINT handler that only takes note:
            # Ctrl-C reaches the whole process group, and this process alone answers it (``__exit__``
            # ends the workers), here once the submit is done.
            interrupted: list[object] = []
            previous = signal.signal(signal.SIGINT, lambda *caught: interrupted.append(caught))
            try:
                submitted = self._pool.submit(_call, function, *args)
            finally:
                signal.signal(signal.SIGINT, previous)
            if interrupted and callable(previous):
                previous(signal.SIGINT, None)  # Python's own handler raises KeyboardInterrupt
            return submitted
        done: concurrent.futures.Future[Result] = concurrent.futures.Future()
        try:
            done.set_result(function(self._shared, *args))
        except Exception as error:  # raised by result(), as from a worker
            done.set_exception(error)
        return done

    def __enter__(self) -> Workers[Shared]:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if self._pool is None:
            return
        if kind is not None:  # interrupted or failed: the replays still running are of no use
            for process in list((getattr(self._pool, "_processes", None) or {}).values()):
                process.terminate()
        self._pool.shutdown(cancel_futures=True)
