"""How long a training runs and how big its steps are: a schedule in steps, a budget in minutes.

The learning rate follows the steps (warm-up, then a cosine down to a floor), over the planned
number of steps: `max_steps`, or fewer when the time limit will end training first at the speed
measured so far. On a busy machine the plan shrinks but stays a whole schedule, never shorter than
`MIN_PLAN` steps, and the rate never falls below `FLOOR` of its peak: a budget ends training, it
does not stop it from learning. A small set of photos also ends it: see `step_limit`.
"""
from __future__ import annotations

import math
import time

MIN_PLAN = 300
FLOOR = 0.05
PASSES = 200  # passes over the photos when --num-epoch is not given ...
PASSES_MIN_STEPS = 1_500  # ... but never fewer steps than this: the decoder needs about a thousand


def step_limit(max_steps: int, num_epoch: int | None, steps_per_pass: int) -> int:
    """The most steps a training takes: `max_steps`, and at most `num_epoch` passes over the photos.

    Without `num_epoch`, PASSES passes but at least PASSES_MIN_STEPS steps. On a few hundred photos
    more passes learn them by heart and read new plates worse (the first 150 US training photos:
    73.9 % of the US test plates after 1,500 steps, 70.7 % after 3,200; bench/bench_accuracy.py).
    """
    passes = num_epoch * steps_per_pass if num_epoch else max(PASSES_MIN_STEPS, PASSES * steps_per_pass)
    return max(1, min(max_steps, passes))


def learning_rate(step: int, planned: int, peak: float, warmup: int) -> float:
    warmup = max(1, min(warmup, planned // 5))
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, planned - warmup))
    return peak * (FLOOR + (1.0 - FLOOR) * 0.5 * (1.0 + math.cos(math.pi * progress)))


class Budget:
    """Steps and seconds: the plan, what is left, and an estimate of the time to the end."""

    def __init__(self, max_steps: int, max_seconds: float | None, spent_seconds: float, reserve_seconds: float):
        self.max_steps, self.max_seconds = max_steps, max_seconds
        self.spent_before = spent_seconds  # from earlier sessions of a resumed run
        self.reserve = reserve_seconds  # kept for the final evaluation and the download bundle
        self.started = time.monotonic()
        self._speed_since: tuple[float, int] | None = None

    def elapsed(self) -> float:
        return self.spent_before + time.monotonic() - self.started

    def start_measuring(self, step: int) -> None:
        """Measure the speed from here (after the first, slower, compiled steps)."""
        self._speed_since = (time.monotonic(), step)

    def steps_per_second(self, step: int) -> float | None:
        if self._speed_since is None:
            return None
        since, first = self._speed_since
        seconds = time.monotonic() - since
        return (step - first) / seconds if seconds > 2.0 and step > first else None

    def seconds_left(self) -> float | None:
        if not self.max_seconds:
            return None
        return self.max_seconds - self.reserve - self.elapsed()

    def planned_steps(self, step: int) -> int:
        left, speed = self.seconds_left(), self.steps_per_second(step)
        if left is None or speed is None:
            return self.max_steps
        return int(min(self.max_steps, max(MIN_PLAN, step + speed * max(0.0, left))))

    def out_of_time(self) -> bool:
        left = self.seconds_left()
        return left is not None and left <= 0

    def eta_seconds(self, step: int) -> float | None:
        """Seconds to the end of the run, the final evaluation included."""
        speed = self.steps_per_second(step)
        if speed is None:
            return None
        by_steps = (self.planned_steps(step) - step) / speed
        left = self.seconds_left()
        return max(0.0, (min(by_steps, left) if left is not None else by_steps) + self.reserve)
