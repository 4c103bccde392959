"""Progress of a long interpretation, on a terminal only: `kernel K: 1234/16777216 blocks (0%),
51,000 blocks/s, 5 min left` on stderr, rewritten in place, erased when the launch ends."""
from __future__ import annotations

import sys
import time

SHOW_AFTER = 2.0        # seconds: shorter launches print nothing
EVERY = 0.5             # seconds between two reports


class Progress:
    def __init__(self, kernel: str, total_blocks: int):
        self.stream = sys.stderr
        self.on = _is_tty(self.stream)
        self.kernel, self.total = kernel, total_blocks
        self.start = self.last = time.monotonic()
        self.width = 0

    def update(self, done_blocks: int):
        if not self.on:
            return
        now = time.monotonic()
        if now - self.start < SHOW_AFTER or now - self.last < EVERY:
            return
        self.last = now
        rate = done_blocks / (now - self.start)
        left = (self.total - done_blocks) / rate if rate > 0 else float("inf")
        text = (f"kernel {self.kernel}: {done_blocks}/{self.total} blocks ({100 * done_blocks // self.total}%), "
                f"{rate:,.0f} blocks/s, {_duration(left)} left")
        self.stream.write("\r" + text.ljust(self.width))
        self.stream.flush()
        self.width = len(text)

    def close(self):
        """Erase the report (the launch finished or trapped)."""
        if self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):       # no isatty, or a closed stream
        return False


def _duration(seconds: float) -> str:
    if seconds == float("inf"):
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"
