"""Shared bits of the benchmark scripts: where the third-party plates live, the fixed splits, a busy
machine, and timing reads. It imports no TensorFlow: standalone_speed.py uses it in a process without."""
from __future__ import annotations

import csv
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# ../shared/data/plates beside the checkout (not part of the project; absent in a user's clone)
PLATES = ROOT.parent / "shared" / "data" / "plates"


def plates_dir(name: str) -> Path | None:
    """The folder of a third-party plate set, or None (after saying so) when it is not here."""
    folder = PLATES / name
    if not (folder / "split.csv").is_file():
        print(f"skipped: {folder} not found (the benchmark needs ../shared/data/plates/{name}).")
        return None
    return folder


def split_rows(folder: Path) -> list[dict]:
    with open(folder / "split.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_annotations(folder: Path, split: str, out: Path, limit: int | None = None) -> Path:
    """An aocr annotation file (`path label` per line) for one side of the fixed split (its first
    `limit` rows, in split.csv order, when given)."""
    rows = [row for row in split_rows(folder) if row["split"] == split][:limit]
    with open(out, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(f"{folder / row['filename']} {row['label']}\n")
    return out


# Started from a fresh, small interpreter: a child forked from the benchmark itself would count the
# benchmark's own memory in its peak until it execs.
WRAPPER = """
import os, subprocess, sys
proc = subprocess.Popen(sys.argv[1:], stdout=sys.stdout, stderr=subprocess.STDOUT)
_, status, usage = os.wait4(proc.pid, 0)
print(f"MEASURED {os.waitstatus_to_exitcode(status)} {usage.ru_maxrss}", file=sys.stderr)
"""


def measure(args: list[str], log: Path, home: Path | None = None) -> tuple[int, float, float]:
    """(exit code, peak RSS in MB, seconds) of one `python -m engine ...` process, with a data folder
    of its own (a training takes the machine's training lock there). Output goes to `log`."""
    import os
    import subprocess
    import time

    started = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PLATE_STUDIO_HOME": str(home or log.parent / "home")}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        done = subprocess.run([sys.executable, "-c", WRAPPER, sys.executable, "-m", "engine", *args], cwd=ROOT, env=env,
                              stdout=out, stderr=subprocess.PIPE, text=True)
    code, kilobytes = (int(x) for x in done.stderr.rsplit("MEASURED ", 1)[1].split())
    return code, kilobytes / 1024, time.perf_counter() - started


class Busy:
    """N CPU-bound processes alongside a measurement, as an operator's machine always has
    (the dashboard, a browser, other work). Each ends by itself after `seconds`, at the latest."""

    def __init__(self, count: int, seconds: float):
        self.count, self.seconds, self.procs = count, seconds, []

    def __enter__(self) -> "Busy":
        import subprocess

        spin = f"import time\nend = time.time() + {self.seconds}\nwhile time.time() < end: pass"
        self.procs = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(self.count)]
        return self

    def __exit__(self, *exc) -> None:
        for proc in self.procs:
            proc.kill()
            proc.wait()

    def describe(self) -> str:
        return f"{self.count} CPU-bound process(es) running alongside" if self.count else "quiet machine"


# --- reading speed (bench_read.py, standalone_speed.py) ------------------------------------------
# The contenders take turns (a round of single reads each, then one pass each), so a change in the
# machine's load (other processes come and go on a shared machine) weighs on all of them alike. A
# round is a stream of single plates, as a camera feeds a reader: one read per turn would measure
# each reader with the other readers' weights in the cache. Besides the wall clock, the CPU time of
# this process (all its threads) per plate is kept: it hardly depends on what else runs.
ROUND = 10


def one_at_a_time(readers: dict[str, Callable[[int], object]], count: int) -> dict[str, tuple[float, float, float]]:
    """Per reader, (median ms, p95 ms, median CPU ms) of `read(i)` (one plate, the i-th) over `count` reads."""
    for read in readers.values():
        for i in range(5):
            read(i)  # warm-up: graph tracing, interpreter allocation
    wall: dict[str, list[float]] = {name: [] for name in readers}
    cpu: dict[str, list[float]] = {name: [] for name in readers}
    for first in range(0, count, ROUND):
        for name, read in readers.items():
            for i in range(first, min(first + ROUND, count)):
                started, used = time.perf_counter(), time.process_time()
                read(i)
                wall[name].append((time.perf_counter() - started) * 1000)
                cpu[name].append((time.process_time() - used) * 1000)
    return {name: (statistics.median(t), sorted(t)[int(len(t) * 0.95)], statistics.median(cpu[name]))
            for name, t in wall.items()}


def per_second(readers: dict[str, Callable[[], object]], count: int, passes: int = 5) -> dict[str, tuple[float, float]]:
    """Per reader, (plates/s, CPU ms per plate) of `read()` (which reads `count` plates): medians of `passes`."""
    for read in readers.values():
        read()  # warm-up
    rates: dict[str, list[float]] = {name: [] for name in readers}
    cpu: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(passes):
        for name, read in readers.items():
            started, used = time.perf_counter(), time.process_time()
            read()
            rates[name].append(count / (time.perf_counter() - started))
            cpu[name].append((time.process_time() - used) * 1000 / count)
    return {name: (statistics.median(r), statistics.median(cpu[name])) for name, r in rates.items()}
