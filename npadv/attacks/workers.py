"""Batches of an evaluation attacked in worker processes, side by side.

    for start, result in run_in_workers(model, attacks, cascade, jobs, workers=2): ...

Each worker is a fresh interpreter (`python -m npadv.attacks.workers`) with one BLAS
thread. It reads its share of the jobs, pickled, from stdin: the model, the attack specs,
and a list of (start, x, y) batches dealt to it round-robin; it runs evaluate.attack_batch
on each batch and writes (start, result) to stdout after each one, so results arrive as
they are done. A worker that fails writes ("error", traceback) and exits 1, and
run_in_workers raises WorkerError with that traceback.

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


class WorkerError(RuntimeError):
    """A worker process failed; the message holds its traceback."""


def run_in_workers(model, attacks, cascade: bool, jobs: list, workers: int) -> Iterator:
    """Yield (start, result) for every job (start, x, y), in order of completion."""
    shares = [jobs[i::workers] for i in range(min(workers, len(jobs)))]
    env = {**os.environ, **ONE_THREAD}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    procs = [subprocess.Popen([sys.executable, "-m", "npadv.attacks.workers"],
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
                pickle.dump((model, attacks, cascade, share), proc.stdin)
                proc.stdin.close()
            except BrokenPipeError:         # it failed while reading: its error follows
                pass
        left, running = len(jobs), len(procs)
        while left:
            item = results.get()
            if item[0] == "error":
                raise WorkerError(f"an evaluation worker failed:\n{item[1]}")
            if item[0] == "exit":
                running -= 1
                if item[1].wait() != 0 or not running:
                    raise WorkerError(f"an evaluation worker exited with code "
                                      f"{item[1].returncode} before its batches were done")
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

    from ..nn import evaluating
    from .evaluate import attack_batch

    out = sys.stdout.buffer
    try:
        model, attacks, cascade, share = pickle.load(sys.stdin.buffer)
        with evaluating(model):
            for start, x, y in share:
                pickle.dump((start, attack_batch(model, x, y, attacks, cascade)), out)
                out.flush()
    except BaseException:                              # noqa: BLE001 - reported to the caller
        pickle.dump(("error", traceback.format_exc()), out)
        out.flush()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
