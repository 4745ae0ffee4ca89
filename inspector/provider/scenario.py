"""Scenarios: a vendor's events in order, with delays, rendered with shared values.

A scenario file (``fixtures/scenarios/<name>.yaml``)::

    name: audian-call
    vendor: audian
    description: One inbound call from dial to hang-up.
    shared: {}                 # optional: values fixed up front (call_id: call_123…)
    steps:
      - event: call.initiated
      - event: call.ringing
        delay: 2s              # before this step: 500ms, 2s, 1m or a number of seconds
      - event: call.completed
        delay: 30s
        set: {data.duration: 42}   # optional overrides, as --set

Every step is rendered with one ``shared`` dict, so ``{{ shared call_id … }}`` is the same id in
every event, and at the scenario's clock (start + the delays so far), so the events' times follow
each other even when the run does not wait. Pure: reading the files, no network, no sleeping.

The files live in ``fixtures/scenarios`` (the vendor catalog skips that folder; an older
``fixtures/_scenarios`` is read as well).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from .catalog import default_root
from .errors import ProviderError
from .model import Catalog
from .render import Rendered, render

FOLDERS = ("scenarios", "_scenarios")
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


class ScenarioError(ProviderError):
    """A scenario that cannot be loaded or run; the message names the file and the step."""


class UnknownScenarioError(ScenarioError):
    pass


@dataclass(frozen=True)
class Step:
    event: str
    delay: float = 0.0
    overrides: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    name: str
    vendor: str
    steps: tuple[Step, ...]
    description: str = ""
    shared: dict[str, Any] = field(default_factory=dict)
    path: str = ""
    overrides: dict[str, Any] = field(default_factory=dict)
    """The file's top-level ``set``: applied to every step (a step's own ``set`` wins)."""

    def to_public(self) -> dict[str, Any]:
        return {"name": self.name, "vendor": self.vendor, "description": self.description,
                "shared": dict(self.shared), "set": dict(self.overrides),
                "total_delay": sum(s.delay for s in self.steps),
                "steps": [{"event": s.event, "delay": s.delay, "set": dict(s.overrides)}
                          for s in self.steps]}


def parse_duration(raw: Any, where: str) -> float:
    if isinstance(raw, bool):
        raise ScenarioError(f"{where}: delay must be a duration like 2s, got {raw!r}")
    if isinstance(raw, int | float):
        value = float(raw)
    else:
        m = _DURATION.match(str(raw))
        if not m:
            raise ScenarioError(f"{where}: delay must be a duration like 500ms, 2s or 1m, "
                                f"got {raw!r}")
        value = float(m.group(1)) * _UNITS[m.group(2)]
    if value < 0:
        raise ScenarioError(f"{where}: delay must not be negative")
    return value


def parse_scenario(data: Any, where: str, catalog: Catalog | None = None) -> Scenario:
    """A scenario from its YAML data; checks the vendor and events against ``catalog``."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{where}: expected a mapping with name, vendor and steps")
    name = data.get("name")
    if not isinstance(name, str) or not NAME.match(name):
        raise ScenarioError(f"{where}: name must be a-z, 0-9, - or _ (got {name!r})")
    vendor = data.get("vendor")
    if not isinstance(vendor, str) or not vendor:
        raise ScenarioError(f"{where}: vendor is required")
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise ScenarioError(f"{where}: steps must be a non-empty list")
    shared = data.get("shared") or {}
    if not isinstance(shared, dict):
        raise ScenarioError(f"{where}: shared must be a mapping")
    common = data.get("set") or {}
    if not isinstance(common, dict):
        raise ScenarioError(f"{where}: set must be a mapping of path: value")
    unknown = set(data) - {"name", "vendor", "description", "shared", "set", "steps"}
    if unknown:
        raise ScenarioError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    v = None
    if catalog is not None:
        try:
            v = catalog.vendor(vendor)
        except ProviderError as exc:
            raise ScenarioError(f"{where}: {exc}") from None
    steps = []
    for i, raw in enumerate(raw_steps, 1):
        at = f"{where}: step {i}"
        if isinstance(raw, str):
            raw = {"event": raw}
        if not isinstance(raw, dict) or not isinstance(raw.get("event"), str):
            raise ScenarioError(f"{at}: each step needs an event")
        unknown = set(raw) - {"event", "delay", "set"}
        if unknown:
            raise ScenarioError(f"{at}: unknown key(s) {', '.join(sorted(unknown))}")
        if v is not None:
            try:
                v.event(raw["event"])
            except ProviderError as exc:
                raise ScenarioError(f"{at}: {exc}") from None
        overrides = raw.get("set") or {}
        if not isinstance(overrides, dict):
            raise ScenarioError(f"{at}: set must be a mapping of path: value")
        steps.append(Step(raw["event"], parse_duration(raw.get("delay", 0), at),
                          {str(k): val for k, val in overrides.items()}))
    return Scenario(name=name, vendor=vendor, steps=tuple(steps),
                    description=str(data.get("description") or "").strip(),
                    shared=dict(shared), path=where,
                    overrides={str(k): val for k, val in common.items()})


def scenario_folders(root: Path | None = None) -> list[Path]:
    root = Path(root) if root is not None else default_root()
    return [root / f for f in FOLDERS if (root / f).is_dir()]


def load_scenarios(root: Path | None = None, catalog: Catalog | None = None
                   ) -> dict[str, Scenario]:
    """Every scenario file under the fixtures root, by name. Raises ScenarioError for a
    broken file (naming it): scenarios are few and hand-written."""
    out: dict[str, Scenario] = {}
    for folder in scenario_folders(root):
        for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
            where = f"{folder.name}/{path.name}"
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError as exc:
                raise ScenarioError(f"{where}: not valid YAML: {exc}") from None
            sc = parse_scenario(data, where, catalog)
            if sc.name in out:
                raise ScenarioError(f"{where}: scenario {sc.name!r} is defined twice")
            out[sc.name] = sc
    return out


def get_scenario(name: str, root: Path | None = None, catalog: Catalog | None = None
                 ) -> Scenario:
    scenarios = load_scenarios(root, catalog)
    if name not in scenarios:
        known = ", ".join(sorted(scenarios)) or "none"
        raise UnknownScenarioError(f"unknown scenario {name!r} (known: {known})")
    return scenarios[name]


@dataclass
class PlannedStep:
    index: int
    step: Step
    at: float
    """Seconds after the start (the sum of the delays so far)."""
    now: datetime
    seed: int
    rendered: Rendered
    overrides: dict[str, Any] = field(default_factory=dict)
    """Everything pinned in this step (scenario ``set``, the caller's, the step's)."""


def render_scenario(catalog: Catalog, scenario: Scenario, *, seed: int | None = None,
                    start: datetime | None = None, shared: dict[str, Any] | None = None,
                    overrides: dict[str, Any] | None = None) -> tuple[list[PlannedStep],
                                                                       dict[str, Any]]:
    """Render every step with one shared dict; returns the steps and the shared values.

    ``seed``: step i uses ``seed + i`` (same seed, same bodies); ``start``: the first event's
    time (default: now); ``overrides``: applied to every step (a step's own ``set`` wins).
    """
    import secrets

    vendor = catalog.vendor(scenario.vendor)
    base = seed if seed is not None else secrets.randbits(53)  # JS-safe
    start = start or datetime.now(UTC)
    values: dict[str, Any] = dict(scenario.shared)
    if shared:
        values.update(shared)
    planned, at = [], 0.0
    for i, step in enumerate(scenario.steps):
        at += step.delay
        now = start + timedelta(seconds=at)
        step_overrides = {**scenario.overrides, **(overrides or {}), **step.overrides}
        r = render(vendor, step.event, seed=base + i, overrides=step_overrides or None,
                   shared=values, now=now)
        planned.append(PlannedStep(i, step, at, now, base + i, r, step_overrides))
    return planned, values


__all__ = ["PlannedStep", "Scenario", "ScenarioError", "Step", "UnknownScenarioError",
           "get_scenario", "load_scenarios", "parse_duration", "parse_scenario",
           "render_scenario", "scenario_folders"]
