"""Loading `fixtures/<vendor>/vendor.yaml` and `events/*.yaml` into a `Catalog`.

The loader never raises: a broken file becomes a `FixtureError` naming the file, the line and
the field (`fixtures/audian/events/call.yaml:14: field 'data.duration': unknown generator
'fakr.pyint'`), the vendor or event file it belongs to is skipped, and everything else loads.
Every event is also rendered once at load time, so a fixture that only fails when it runs
(a reference loop, a `by` without a matching case) is reported here rather than to a user.
"""

from __future__ import annotations

import importlib.resources
import os
import re
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from .errors import FixtureError, ProviderError, RenderError
from .fakerx import known_locale
from .model import (
    BODY_FORMATS,
    GET_ENCODINGS,
    HTTP_METHODS,
    SIGNING_SCHEMES,
    BatchSpec,
    Catalog,
    Event,
    HeaderSpec,
    Provenance,
    Vendor,
)
from .paths import PathError, Segment, format_path, parse_path
from .syntax import CompileEnv
from .template import (
    Lit,
    MapT,
    TNode,
    check_refs,
    compile_node,
    compile_text,
    leaf_paths,
    merge,
    static_target,
)
from .timefmt import FORMATS, zone
from .yamlread import Problems, Section, compose, line_of, mapping_items, scalar_value

__all__ = ["Catalog", "Event", "FixtureError", "Provenance", "Vendor", "default_catalog",
           "default_root", "load_catalog"]

VENDOR_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*(\.[A-Za-z][A-Za-z0-9_-]*)*$")
_VENDOR_KEYS = ("name", "description", "docs", "methods", "signing", "demo_secret", "retry",
                "timeout", "https_only", "locale", "body", "delivery_id", "message_id",
                "headers", "enums", "batch", "envelope", "fields")
_EXEMPT = "__pycache__"


def default_root() -> Path:
    """``INSPECTOR_FIXTURES`` (``serve --fixtures``) when set; else the fixtures shipped with
    the package; in a checkout that is not installed, ./fixtures."""
    override = os.environ.get("INSPECTOR_FIXTURES")
    if override:
        return Path(override)
    try:
        return Path(str(importlib.resources.files("inspector.fixtures")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "fixtures"


@cache
def default_catalog() -> Catalog:
    """The shipped catalog, loaded once per process (fixtures do not change while running)."""
    return load_catalog()


def load_catalog(root: Path | None = None) -> Catalog:
    """Every vendor under `root` (default: `default_root()`); never raises for bad fixtures."""
    root = Path(root) if root is not None else default_root()
    vendors: dict[str, Vendor] = {}
    errors: list[FixtureError] = []
    shown = root.name or str(root)
    if not root.is_dir():
        return Catalog(root, {}, [FixtureError(shown, None, None, "fixtures folder not found")])
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.name.startswith((".", "_")) or folder.name == "scenarios":  # not a vendor
            continue
        try:
            vendor, problems = _VendorLoader(folder, shown).load()
        except Exception as exc:  # noqa: BLE001 - a loader bug must not take the others down
            vendor, problems = None, [FixtureError(f"{shown}/{folder.name}", None, None,
                                                   f"could not load: {exc!r}")]
        errors.extend(problems)
        if vendor is not None:
            vendors[vendor.id] = vendor
    return Catalog(root, vendors, errors)


def _provenance(sec: Section) -> Provenance | None:
    """Exactly one of `documented: <where>` or `assumed: <why>`."""
    found = [(k, sec.nodes[k]) for k in ("documented", "assumed") if k in sec.nodes]
    if len(found) != 1:
        sec.problems.add(sec.line, sec.where, "say where this is documented (documented: …)"
                                              " or why it is assumed (assumed: …), once")
        return None
    status, node = found[0]
    try:
        note = scalar_value(node)
    except ValueError as exc:
        sec.problems.add(line_of(node), sec.field(status), str(exc))
        return None
    if not isinstance(note, str) or not note.strip():
        sec.problems.add(line_of(node), sec.field(status), "needs a short note")
        return None
    return Provenance(status, " ".join(note.split()))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


class _VendorLoader:
    """Reads one vendor folder; collects problems instead of stopping at the first."""

    def __init__(self, folder: Path, shown_root: str) -> None:
        self.folder = folder
        self.shown_root = shown_root
        self.errors: list[FixtureError] = []
        self.provenance: dict[str, Provenance] = {}
        self.vendor_fields: dict[str, Provenance] = {}

    def shown(self, path: Path) -> str:
        return f"{self.shown_root}/{path.relative_to(self.folder.parent).as_posix()}"

    def _read(self, path: Path, problems: Problems) -> yaml.Node | None:
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            problems.add(None, None, f"cannot read: {exc}")
            return None
        node = compose(text, problems)
        if node is None and not problems:
            problems.add(None, None, "the file is empty")
        return node

    def _setting(self, doc: Section, key: str, *, required: bool = True,
                 keys: tuple[str, ...] = ("value",)) -> Section | None:
        sec = doc.section(key, required=required)
        if sec is None:
            return None
        sec.allow(*keys, "documented", "assumed")
        prov = _provenance(sec)
        if prov is not None:
            self.provenance[key] = prov
        return sec

    # vendor.yaml ------------------------------------------------------------------------------

    def load(self) -> tuple[Vendor | None, list[FixtureError]]:
        vid = self.folder.name
        path = self.folder / "vendor.yaml"
        problems = Problems(self.shown(path))
        if not VENDOR_ID.match(vid):
            problems.add(None, None, f"folder name {vid!r} is not a vendor id (a-z, 0-9, -)")
            return None, problems.errors
        if not path.is_file():
            problems.add(None, None, "missing: every vendor folder needs a vendor.yaml")
            return None, problems.errors
        node = self._read(path, problems)
        if node is None:
            return None, problems.errors
        doc = Section(node, problems)
        doc.allow(*_VENDOR_KEYS)
        vendor = self._vendor(vid, doc, problems)
        if problems or vendor is None:
            return None, problems.errors
        events: dict[str, Event] = {}
        event_dir = self.folder / "events"
        files = sorted([*event_dir.glob("*.yaml"), *event_dir.glob("*.yml")])
        for file in files:
            self._event_file(vendor, file, events)
        if not files:
            self.errors.append(FixtureError(self.shown(event_dir), None, None,
                                            "no event files (events/*.yaml)"))
        vendor = replace(vendor, events=events)
        vendor = replace(vendor, events=_trial_render(vendor, self.errors))
        return vendor, problems.errors + self.errors

    def _vendor(self, vid: str, doc: Section, problems: Problems) -> Vendor | None:
        name = doc.text("name")
        description = doc.text("description", required=False, default="")
        docs = doc.get("docs", list, required=False, default=[])
        methods_sec = self._setting(doc, "methods", keys=("value", "default"))
        methods = default_method = None
        if methods_sec is not None:
            methods = methods_sec.get("value", list)
            if methods is not None:
                bad = [m for m in methods if m not in HTTP_METHODS]
                if bad or not methods:
                    problems.add(methods_sec.line_at("value"), "methods.value",
                                 f"unknown method(s) {bad} (use {', '.join(HTTP_METHODS)})")
                    methods = None
            default_method = methods_sec.get("default", str, choices=tuple(methods or ()) or None)
        signing_sec = self._setting(doc, "signing", keys=("scheme",))
        signing = signing_sec.get("scheme", str, choices=SIGNING_SCHEMES) if signing_sec else None
        secret_sec = self._setting(doc, "demo_secret")
        demo_secret = secret_sec.get("value", str) if secret_sec else None
        retry = self._retry(doc, problems)
        timeout_sec = self._setting(doc, "timeout")
        timeout = timeout_sec.get("value", (int, float)) if timeout_sec else None
        https_sec = self._setting(doc, "https_only")
        https_only = https_sec.get("value", bool) if https_sec else None
        locale, timezone, time_format = self._locale(doc, problems)
        body_sec = self._setting(doc, "body", keys=("format", "get_params"))
        body_format = get_encoding = None
        if body_sec is not None:
            body_format = body_sec.get("format", str, choices=BODY_FORMATS)
            get_encoding = body_sec.get("get_params", str, required=False, default="brackets",
                                        choices=GET_ENCODINGS)
        enums = self._enums(doc, problems)
        env = CompileEnv(enums=enums or {}, locale=locale or "en_US")
        headers = self._headers(doc, problems, env)
        delivery_id = self._id_format(doc, "delivery_id", problems,
                                      CompileEnv(enums=env.enums, locale=env.locale,
                                                 allow_refs=False))
        message_id = self._id_format(doc, "message_id", problems, env)
        batch = self._batch(doc, problems)
        envelope_node = doc.nodes.get("envelope")
        envelope = None
        if envelope_node is None:
            problems.add(doc.line, "envelope", "missing: the payload every event starts from")
        else:
            envelope = compile_node(envelope_node, env, problems.file, (), problems)
            if envelope is not None and not isinstance(envelope, MapT):
                problems.add(line_of(envelope_node), "envelope", "must be an object")
        self.vendor_fields = self._fields(doc, problems, envelope)
        if "$" not in self.vendor_fields and not problems:
            problems.add(doc.line_at("fields"), "fields",
                         "needs '$' (the provenance of every field not listed)")
        delivery_header = next((h.name for h in headers if "attempt.delivery_id" in h.value),
                               None)
        if delivery_header and delivery_id is None:
            problems.add(doc.line, "delivery_id", f"header {delivery_header} uses"
                         " attempt.delivery_id: say how ids look (delivery_id: format: …)")
        content_types = [h for h in headers if h.name.lower() == "content-type"]
        if methods and any(m != "GET" for m in methods) and not content_types:
            problems.add(doc.line_at("headers"), "headers", "a vendor that sends a body needs a"
                                                            " Content-Type header")
        if content_types and not isinstance(content_types[0].template, Lit):
            problems.add(doc.line_at("headers"), "headers", "Content-Type must be plain text")
        if problems:
            return None
        assert envelope is not None and retry is not None
        return Vendor(
            id=vid, name=str(name), description=str(description),
            docs=tuple(str(d) for d in docs), methods=tuple(methods or ()),
            default_method=str(default_method), content_type=(
                content_types[0].value if content_types else None),
            body_format=str(body_format), get_encoding=str(get_encoding),
            signing=str(signing), demo_secret=str(demo_secret), retry_schedule=retry[0],
            retry_jitter=retry[1], no_retry_statuses=retry[2], timeout=float(timeout or 0),
            https_only=bool(https_only), locale=str(locale), timezone=str(timezone),
            time_format=str(time_format), delivery_id_header=delivery_header,
            headers=tuple(headers), enums=enums or {}, batch=batch, events={},
            provenance=dict(self.provenance), file=problems.file, envelope=envelope,
            message_id_template=message_id, delivery_id_template=delivery_id)

    def _retry(self, doc: Section, problems: Problems
               ) -> tuple[tuple[float, ...], tuple[float, float], tuple[int, ...]] | None:
        sec = self._setting(doc, "retry", keys=("schedule", "jitter", "no_retry"))
        if sec is None:
            return None
        schedule = sec.get("schedule", list)
        jitter = sec.get("jitter", list, required=False, default=[0, 0])
        no_retry = sec.get("no_retry", list, required=False, default=[])
        if schedule is not None and (not schedule or not all(map(_number, schedule))):
            problems.add(sec.line_at("schedule"), "retry.schedule",
                         "a list of seconds (0 or more) to wait before each attempt, e.g. [0, 60]")
            return None
        if jitter is not None and (len(jitter) != 2 or not all(map(_number, jitter))
                                   or jitter[0] > jitter[1]):
            problems.add(sec.line_at("jitter"), "retry.jitter", "two numbers [min, max] seconds")
            return None
        if no_retry is not None and not all(isinstance(s, int) and 100 <= s <= 599
                                            for s in no_retry):
            problems.add(sec.line_at("no_retry"), "retry.no_retry", "a list of HTTP statuses")
            return None
        if schedule is None or jitter is None or no_retry is None:
            return None
        return (tuple(float(s) for s in schedule), (float(jitter[0]), float(jitter[1])),
                tuple(sorted(no_retry)))

    def _locale(self, doc: Section, problems: Problems) -> tuple[str | None, ...]:
        sec = self._setting(doc, "locale", keys=("value", "timezone", "time_format"))
        if sec is None:
            return None, None, None
        locale = sec.get("value", str)
        if locale is not None and not known_locale(locale):
            problems.add(sec.line_at("value"), "locale.value", f"unknown Faker locale {locale!r}")
        tz = sec.get("timezone", str, required=False, default="UTC")
        try:
            zone(tz)
        except ValueError as exc:
            problems.add(sec.line_at("timezone"), "locale.timezone", str(exc))
        time_format = sec.get("time_format", str, required=False, default="iso", choices=FORMATS)
        return locale, tz, time_format

    def _enums(self, doc: Section, problems: Problems) -> dict[str, tuple[Any, ...]] | None:
        sec = doc.section("enums", required=False)
        enums: dict[str, tuple[Any, ...]] = {}
        if sec is None:
            return enums
        for name in sec.nodes:
            item = sec.section(name)
            if item is None:
                continue
            item.allow("values", "documented", "assumed")
            prov = _provenance(item)
            values = item.get("values", list)
            if values is not None and (not values or any(isinstance(v, list | dict)
                                                         for v in values)):
                problems.add(item.line_at("values"), item.field("values"),
                             "a non-empty list of plain values")
                continue
            if prov is not None and values is not None:
                enums[name] = tuple(values)
                self.provenance[f"enums.{name}"] = prov
        return enums

    def _headers(self, doc: Section, problems: Problems, env: CompileEnv) -> list[HeaderSpec]:
        node = doc.nodes.get("headers")
        if node is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            problems.add(line_of(node), "headers", "a list of {name, value, documented|assumed}")
            return []
        headers = []
        for i, item_node in enumerate(node.value):
            sec = Section(item_node, problems, f"headers[{i}]")
            sec.allow("name", "value", "documented", "assumed")
            name, value, prov = sec.text("name"), sec.get("value", str), _provenance(sec)
            if name is None or value is None or prov is None:
                continue
            if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name):
                problems.add(sec.line_at("name"), sec.field("name"), f"{name!r} is not a header"
                                                                     " name")
                continue
            header_env = CompileEnv(enums=env.enums, locale=env.locale, allow_attempt=True)
            try:
                template = compile_text(value, header_env, problems.file, sec.line_at("value"))
            except Exception as exc:  # noqa: BLE001 - TemplateError, reported with its line
                problems.add(sec.line_at("value"), sec.field("value"), str(exc))
                continue
            per_attempt = bool(getattr(template, "uses_attempt", False))
            if per_attempt and getattr(template, "refs", None):
                problems.add(sec.line_at("value"), sec.field("value"), "a header that changes"
                             " per attempt cannot also refer to the payload")
                continue
            headers.append(HeaderSpec(name, value, template, per_attempt, prov))
        return headers

    def _id_format(self, doc: Section, key: str, problems: Problems, env: CompileEnv
                   ) -> TNode | None:
        sec = self._setting(doc, key, required=False, keys=("format",))
        if sec is None:
            return None
        fmt = sec.get("format", str)
        if fmt is None:
            return None
        try:
            return compile_text(fmt, env, problems.file, sec.line_at("format"))
        except Exception as exc:  # noqa: BLE001 - TemplateError, reported with its line
            problems.add(sec.line_at("format"), sec.field("format"), str(exc))
            return None

    def _batch(self, doc: Section, problems: Problems) -> BatchSpec | None:
        sec = self._setting(doc, "batch", required=False, keys=("flag", "items"))
        if sec is None:
            return None
        flag, items = sec.get("flag", str), sec.get("items", str)
        prov = self.provenance.get("batch")
        if flag is None or items is None or prov is None:
            return None
        try:
            return BatchSpec(parse_path(flag)[1], parse_path(items)[1], prov)
        except PathError as exc:
            problems.add(sec.line, "batch", str(exc))
            return None

    def _fields(self, owner: Section, problems: Problems, template: TNode | None
                ) -> dict[str, Provenance]:
        """A `fields:` map (path -> documented/assumed), its paths checked against `template`."""
        sec = owner.section("fields", required=False)
        out: dict[str, Provenance] = {}
        if sec is None:
            return out
        for key in sec.nodes:
            item = sec.section(key)
            if item is None:
                continue
            item.allow("documented", "assumed")
            prov = _provenance(item)
            try:
                segments = () if key == "$" else parse_path(key, wildcard=True)[1]
            except PathError as exc:
                problems.add(sec.key_lines[key], item.where, str(exc))
                continue
            why = static_target(template, segments, omitted_ok=True)[1] \
                if segments and template is not None else None
            if why:
                problems.add(sec.key_lines[key], item.where, f"no such field here: {why}")
                continue
            if prov is not None:
                out[format_path(segments)] = prov
        return out

    # events/*.yaml ----------------------------------------------------------------------------

    def _event_file(self, vendor: Vendor, path: Path, events: dict[str, Event]) -> None:
        problems = Problems(self.shown(path))
        node = self._read(path, problems)
        if node is None:
            self.errors.extend(problems.errors)
            return
        doc = Section(node, problems)
        doc.allow("common", "fields", "events")
        env = CompileEnv(enums=dict(vendor.enums), locale=vendor.locale)
        common = None
        if "common" in doc.nodes:
            common = compile_node(doc.nodes["common"], env, problems.file, (), problems)
        base = merge(vendor.envelope, common)
        file_fields = self._fields(doc, problems, base)
        events_node = doc.nodes.get("events")
        if events_node is None or not isinstance(events_node, yaml.MappingNode):
            problems.add(doc.line, "events", "missing: a map of event name -> event")
        if problems:  # the shared parts are broken: every event in the file would be
            self.errors.extend(problems.errors)
            return
        assert isinstance(events_node, yaml.MappingNode)
        for key_node, ev_node in mapping_items(events_node, problems, "events"):
            before = len(problems.errors)
            event = self._event(vendor, str(scalar_value(key_node)), line_of(key_node), ev_node,
                                base, file_fields, env, problems)
            if event is None or len(problems.errors) > before:
                continue
            if event.name in events:
                problems.add(event.line, f"events.{event.name}",
                             f"already defined in {events[event.name].file}")
                continue
            events[event.name] = event
        self.errors.extend(problems.errors)

    def _event(self, vendor: Vendor, name: str, line: int, node: yaml.Node, base: TNode | None,
               file_fields: dict[str, Provenance], env: CompileEnv, problems: Problems
               ) -> Event | None:
        where = f"events.{name}"
        if not EVENT_NAME.match(name):
            problems.add(line, where, "event names look like Listener.updated, call.completed,"
                                      " card-completed or ticket.update")
            return None
        sec = Section(node, problems, where)
        sec.allow("description", "documented", "assumed", "methods", "payload", "fields")
        description = sec.text("description")
        prov = _provenance(sec)
        methods = sec.get("methods", list, required=False, default=list(vendor.methods))
        if methods is not None and (not methods or any(m not in vendor.methods
                                                       for m in methods)):
            problems.add(sec.line_at("methods"), sec.field("methods"),
                         f"must be some of the vendor's methods {list(vendor.methods)}")
        payload = None
        if "payload" in sec.nodes:
            payload = compile_node(sec.nodes["payload"], env, problems.file, (), problems)
        template = merge(base, payload)
        if template is None or not isinstance(template, MapT):
            problems.add(line, where, "the payload must be an object")
            return None
        for err in check_refs(template):
            if err.file != problems.file:  # written in the envelope, broken by this event
                err = FixtureError(problems.file, line, err.field, f"{err.message} (event"
                                   f" {name}; the reference is in {err.file}:{err.line})")
            problems.errors.append(err)
        own_fields = self._fields(sec, problems, template)
        if description is None or prov is None or methods is None:
            return None
        notes = {**self.vendor_fields, **file_fields, **own_fields}
        obj, _, action = name.partition(".")
        return Event(name=name, vendor=vendor.id, description=description, object=obj,
                     action=action, methods=tuple(methods), template=template, provenance=prov,
                     fields=_field_provenance(template, notes), file=problems.file, line=line)


def _field_provenance(template: TNode, notes: dict[str, Provenance]) -> dict[str, Provenance]:
    """Each payload field's provenance: its own note, else the nearest noted parent's."""
    out = {}
    for path in leaf_paths(template):
        for depth in range(len(path), -1, -1):
            found = notes.get(format_path(path[:depth]))
            if found is not None:
                out[format_path(path)] = found
                break
    return out


def _no_sign(*args: Any, **kwargs: Any) -> list[tuple[str, str]]:
    return []


def _trial_render(vendor: Vendor, errors: list[FixtureError]) -> dict[str, Event]:
    """Render each event once (every method, a batch if the vendor batches); keep those that
    work. Faults that only show at render time become FixtureErrors at the event's field."""
    from .render import prepare, render

    kept = {}
    for name, event in vendor.events.items():
        try:
            for method in event.methods:
                rendered = render(vendor, name, seed=1, method=method)
                prepare(rendered, secret="trial", timestamp=1_700_000_000, sign=_no_sign)
            if vendor.batch is not None:
                render(vendor, name, seed=1, batch=2)
        except Exception as exc:  # noqa: BLE001 - any failure here is the fixture's
            path = exc.path if isinstance(exc, RenderError) else None
            message = str(exc) if isinstance(exc, ProviderError) else f"{exc!r}"
            if path and message.startswith(f"{path}: "):
                message = message[len(path) + 2:]
            file, line = _where(event, path)
            errors.append(FixtureError(file, line, path,
                                       f"event {name} does not render: {message}"))
            continue
        kept[name] = event
    return kept


def _where(event: Event, path: str | None) -> tuple[str, int]:
    """The file and line that wrote the field at `path` (maybe the vendor's envelope)."""
    if path:
        try:
            segments: tuple[Segment, ...] = parse_path(path)[1]
        except PathError:
            return event.file, event.line
        node = static_target(event.template, segments)[0]
        if node is not None:
            return node.file, node.line
    return event.file, event.line
