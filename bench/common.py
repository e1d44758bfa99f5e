"""Shared bits of the benchmark scripts: where the third-party plates live, and the fixed splits."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

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
