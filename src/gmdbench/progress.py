"""Progress of long work as plain lines, for logs: a batch job's stdout is a file, where a
terminal's progress bar writes nothing (DESIGN §11: rich on a terminal, plain periodic lines
otherwise).

A line is written for the first step, then at most once per ``interval`` seconds, and for the
last step: ``training schnet: epoch 12/150, val loss 0.0123, elapsed 0:03:12, ETA 0:35:40``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

DEFAULT_INTERVAL = 60.0  # seconds between two lines


def _clock(seconds: float) -> str:
    return str(timedelta(seconds=round(seconds)))


class ProgressLines:
    """Calls ``say`` with a progress line at most every ``interval`` seconds."""

    def __init__(self, say: Callable[[str], None], what: str, unit: str,
                 total: int | None = None, interval: float = DEFAULT_INTERVAL,
                 clock: Callable[[], float] = time.monotonic):
        self.say, self.what, self.unit, self.total = say, what, unit, total
        self.interval, self.clock = interval, clock
        self.started = clock()
        self.last_said: float | None = None
        self.first: tuple[int, float] | None = None  # (steps done, time) at the first update

    def update(self, done: int, total: int | None = None, **fields: object) -> None:
        """``done`` of ``total`` steps finished (``fields``: e.g. ``val_loss="0.012"``)."""
        total = total if total is not None else self.total
        self.total = total
        now = self.clock()
        if self.first is None:  # a resumed run starts part-way: rates count from here
            self.first = (done, now)
        finished = total is not None and done >= total
        if self.last_said is not None and not finished and now - self.last_said < self.interval:
            return
        self.last_said = now
        elapsed = now - self.started
        text = f"{self.what}: {self.unit} {done}" + (f"/{total}" if total is not None else "")
        text += "".join(f", {key.replace('_', ' ')} {value}" for key, value in fields.items())
        text += f", elapsed {_clock(elapsed)}"
        steps, since = done - self.first[0], now - self.first[1]
        if total is not None and not finished and steps > 0:
            text += f", ETA {_clock(since / steps * (total - done))}"
        self.say(text)
