"""When to try again: a vendor's retry schedule, jitter, timeout and final statuses, scaled.

A policy is stored with each delivery (as JSON), so a delivery made before a restart keeps the
schedule it started with, and replays and forwards (which have no vendor) carry their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

REPLAY_SCHEDULE = (0.0, 10.0, 60.0, 300.0, 1800.0)
"""Replays of a capture with no vendor to imitate: five attempts over about 36 minutes (assumed;
a common shape among providers), scaled by --retry-scale like every schedule."""
FOREVER_CAP = 3600.0
"""Forwarding retries until delivered; past its schedule it waits the last delay, at most this."""


@dataclass(frozen=True)
class RetryPolicy:
    """``schedule[i]`` is the wait before attempt ``i + 1``, counted from the previous attempt
    (``schedule[0]`` is normally 0). ``forever`` keeps retrying past the schedule."""

    schedule: tuple[float, ...] = REPLAY_SCHEDULE
    jitter: tuple[float, float] = (0.0, 0.0)
    no_retry_statuses: tuple[int, ...] = ()
    timeout: float = 30.0
    scale: float = 1.0
    forever: bool = False
    name: str | None = None
    """Whose rules these are (the vendor's name), for messages."""

    @classmethod
    def from_vendor(cls, vendor: Any, scale: float = 1.0, timeout: float | None = None
                    ) -> RetryPolicy:
        return cls(schedule=tuple(float(s) for s in vendor.retry_schedule) or (0.0,),
                   jitter=(float(vendor.retry_jitter[0]), float(vendor.retry_jitter[1])),
                   no_retry_statuses=tuple(vendor.no_retry_statuses),
                   timeout=float(timeout if timeout is not None else vendor.timeout),
                   scale=scale, name=vendor.name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetryPolicy:
        return cls(schedule=tuple(data["schedule"]), jitter=tuple(data["jitter"]),  # type: ignore[arg-type]
                   no_retry_statuses=tuple(data["no_retry_statuses"]),
                   timeout=data["timeout"], scale=data["scale"],
                   forever=data.get("forever", False), name=data.get("name"))

    def to_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies field by field, a visible cost per delivery.
        return {"schedule": list(self.schedule), "jitter": list(self.jitter),
                "no_retry_statuses": list(self.no_retry_statuses), "timeout": self.timeout,
                "scale": self.scale, "forever": self.forever, "name": self.name}

    @property
    def max_attempts(self) -> int | None:
        return None if self.forever else len(self.schedule)

    def delay_before(self, attempt: int, rng: random.Random | None = None) -> float | None:
        """Seconds to wait before ``attempt`` (1-based), scaled, jitter included; None when the
        schedule has no such attempt."""
        if attempt < 1:
            return None
        if attempt > len(self.schedule):
            if not self.forever:
                return None
            base = min(self.schedule[-1] or 1.0, FOREVER_CAP)
        else:
            base = self.schedule[attempt - 1]
        if attempt > 1 and self.jitter[1] > 0:
            base += (rng or random).uniform(*self.jitter)
        return max(0.0, base * self.scale)

    def should_retry(self, status: int | None) -> bool:
        """No response earns a retry; a 2xx is done; a final status (e.g. 410) is not retried."""
        if status is None:
            return True
        return not 200 <= status < 300 and status not in self.no_retry_statuses

    def worst_case_seconds(self) -> float:
        """An upper bound on the time from the first attempt to settling (for ``wait``)."""
        attempts = len(self.schedule)
        waits = sum(self.schedule[1:]) + max(0, attempts - 1) * self.jitter[1]
        return waits * self.scale + attempts * self.timeout
