"""Run one function over many items in worker processes, surviving a worker that dies.

``multiprocessing.Pool`` loses the task of a worker killed by a signal (a segmentation fault in a
metric's native code, the kernel's OOM killer) and then waits for its result forever.
:func:`map_isolating_crashes` uses ``concurrent.futures.ProcessPoolExecutor`` instead, which marks
every unfinished item of a pool whose worker died as failed. Those items are then retried one at a
time in a fresh single-worker pool: an item that kills that worker too is the culprit and becomes
``on_crash(item)``; the others give their normal result. The remaining items continue in a new pool,
so a crash costs one file, never the job.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

# Items queued per worker: enough to keep workers busy, few enough that a crash only forces a
# retry of a handful of items.
QUEUED_PER_WORKER = 2


def _executor(
    workers: int, initializer: Callable[..., None], initargs: tuple[Any, ...]
) -> ProcessPoolExecutor:
    # "spawn" keeps workers independent of whatever the parent has imported (torch, threads).
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(workers, context, initializer, initargs)


def _terminate(executor: ProcessPoolExecutor) -> None:
    """Stop the workers now (the caller stopped early, e.g. Ctrl-C): like ``Pool.terminate``."""
    # The executor has no public way to kill running tasks; its process table is the only handle.
    processes = getattr(executor, "_processes", None) or {}
    for process in list(processes.values()):
        process.terminate()
    executor.shutdown(wait=False, cancel_futures=True)


def _run_pool(
    function: Callable[[Item], Result],
    pending: list[Item],
    workers: int,
    setup: tuple[Callable[..., None], tuple[Any, ...]],
    suspects: list[Item],
) -> Iterator[Result]:
    """Yield results from one pool until ``pending`` is empty or a worker dies.

    Items unfinished when the pool broke are appended to ``suspects``; items never submitted stay
    in ``pending``.
    """
    executor = _executor(workers, *setup)
    running: dict[Future[Result], Item] = {}
    try:
        while pending or running:
            while pending and len(running) < workers * QUEUED_PER_WORKER and not suspects:
                item = pending.pop(0)
                try:
                    running[executor.submit(function, item)] = item
                except BrokenProcessPool:  # a worker died after the last wait returned
                    # Never started: back in line for the next pool; with nothing running it is
                    # retried alone instead, so that a pool that breaks at once still progresses.
                    if running:
                        pending.insert(0, item)
                    else:
                        suspects.append(item)
                    break
            if not running:
                break
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                item = running.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:
                    suspects.append(item)
                    continue
                yield result
    except BaseException:
        _terminate(executor)
        raise
    executor.shutdown(wait=True)


def _retry_alone(
    function: Callable[[Item], Result],
    suspects: list[Item],
    setup: tuple[Callable[..., None], tuple[Any, ...]],
    on_crash: Callable[[Item], Result],
) -> Iterator[Result]:
    """Run each suspect on its own in a single-worker pool; the one that kills it is the culprit."""
    executor = _executor(1, *setup)
    try:
        for item in suspects:
            try:
                result = executor.submit(function, item).result()
            except BrokenProcessPool:
                result = on_crash(item)
                executor.shutdown(wait=True)
                executor = _executor(1, *setup)
            yield result
    except BaseException:
        _terminate(executor)
        raise
    executor.shutdown(wait=True)


def map_isolating_crashes(
    function: Callable[[Item], Result],
    items: Sequence[Item],
    workers: int,
    setup: tuple[Callable[..., None], tuple[Any, ...]],
    on_crash: Callable[[Item], Result],
) -> Iterator[Result]:
    """Yield ``function(item)`` for every item, in completion order, using ``workers`` processes.

    Args:
        function: A picklable module-level function.
        items: Picklable inputs.
        workers: Number of worker processes.
        setup: ``(initializer, initargs)`` run once in every worker process.
        on_crash: Builds the result of an item whose worker process died (in the parent).

    Yields:
        One result per item: ``function(item)``, or ``on_crash(item)`` when processing that item
        killed its worker process.
    """
    pending = list(items)
    while pending:
        suspects: list[Item] = []
        yield from _run_pool(function, pending, workers, setup, suspects)
        if suspects:
            yield from _retry_alone(function, suspects, setup, on_crash)
