"""Which clock offset to trust: the best of the recent polls, NTP's clock filter in small.

Each control poll gives an offset (collector clock minus agent clock) and its uncertainty:
half the round trip the collector did not spend handling the request
(:func:`agent.control.clock_offset`). A poll delayed on one leg only (a busy Wi-Fi uplink,
a queue at the school's gateway) is off by up to that uncertainty, so one exchange is a
poor basis for aligning a room test. Like NTP's clock filter (RFC 5905 §10), the agent
keeps the last :data:`WINDOW` samples not older than :data:`MAX_AGE_S` and uses the one
with the smallest uncertainty: the exchange least disturbed by queueing.

A clock step (the PC's own time service corrects it, someone sets the time) makes old
samples wrong. A new sample whose offset is further from the chosen one than both their
uncertainties plus :data:`STEP_SLACK_S` is a step: the window restarts from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WINDOW = 8
MAX_AGE_S = 900.0
"""A PC clock drifts up to ~50 ppm: 45 ms in 15 minutes, and one poll a minute fills the
window well within that."""
STEP_SLACK_S = 0.05


@dataclass(frozen=True)
class ClockSample:
    at: float
    """Agent wall-clock time (epoch seconds) of the poll."""
    offset_s: float
    uncertainty_s: float


@dataclass
class ClockFilter:
    samples: list[ClockSample] = field(default_factory=list)

    def best(self) -> ClockSample | None:
        """The sample with the smallest uncertainty (the newest of equals), None if none."""
        return min(reversed(self.samples), key=lambda s: s.uncertainty_s, default=None)

    def add(self, sample: ClockSample) -> ClockSample:
        """Take a new poll's sample; returns the sample to use now."""
        self.samples = [s for s in self.samples if sample.at - s.at <= MAX_AGE_S]
        chosen = self.best()
        if chosen is not None and abs(sample.offset_s - chosen.offset_s) > (
                sample.uncertainty_s + chosen.uncertainty_s + STEP_SLACK_S):
            self.samples = []  # a clock step: the old samples measured another clock
        self.samples = [*self.samples, sample][-WINDOW:]
        return self.best() or sample  # never None: the sample was just added
