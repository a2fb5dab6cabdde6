"""Independent jobs run in worker processes, side by side: an evaluation's batches, a
comparison's rows.

    for key, result in run_in_workers(fn, [(key, args), ...], workers=2): ...

Each worker is a fresh interpreter (`python -m npadv.workers`) with one BLAS thread. It
reads, pickled from stdin, a module-level function and its share of the jobs (dealt
round-robin), calls fn(*args) for each, and writes (key, result) to stdout after each one,
so results arrive as they are done. A worker that fails writes ("error", traceback) and
exits 1, and run_in_workers raises WorkerError with that traceback. Arguments and results
must pickle, and their classes must be importable in a fresh interpreter.

Fresh interpreters, not multiprocessing: multiprocessing's spawn re-runs the caller's
script in each worker (a notebook-style script without a main guard would start over),
and fork would copy the caller's BLAS threads.
"""
from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator

ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def available_cpus() -> int:
    """The CPUs this process may run on (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:                         # not on Linux
        return max(1, os.cpu_count() or 1)


class WorkerError(RuntimeError):
    """A worker process failed; the message holds its traceback."""


def run_in_workers(fn, jobs: list, workers: int) -> Iterator:
    """Yield (key, fn(*args)) for every job (key, args), in order of completion."""
    shares = [jobs[i::workers] for i in range(min(workers, len(jobs)))]
    env = {**os.environ, **ONE_THREAD}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    procs = [subprocess.Popen([sys.executable, "-m", "npadv.workers"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
             for _ in shares]
    results: queue.Queue = queue.Queue()

    def read(proc):
        try:
            while True:
                results.put(pickle.load(proc.stdout))
        except EOFError:
            results.put(("exit", proc))

    readers = [threading.Thread(target=read, args=(p,), daemon=True) for p in procs]
    try:
        for proc, share, reader in zip(procs, shares, readers, strict=True):
            reader.start()
            try:
                pickle.dump((fn, share), proc.stdin)
                proc.stdin.close()
            except BrokenPipeError:         # it failed while reading: its error follows
                pass
        left, running = len(jobs), len(procs)
        while left:
            item = results.get()
            if item[0] == "error":
                raise WorkerError(f"a worker process failed:\n{item[1]}")
            if item[0] == "exit":
                running -= 1
                if item[1].wait() != 0 or not running:
                    raise WorkerError(f"a worker process exited with code "
                                      f"{item[1].returncode} before its jobs were done")
                continue
            left -= 1
            yield item
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def main() -> int:
    import traceback

    out = sys.stdout.buffer
    try:
        fn, share = pickle.load(sys.stdin.buffer)
        for key, args in share:
            pickle.dump((key, fn(*args)), out)
            out.flush()
    except BaseException:                              # noqa: BLE001 - reported to the caller
        pickle.dump(("error", traceback.format_exc()), out)
        out.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
