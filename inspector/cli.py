"""The ``webhook-inspector`` command. Each command's docstring is its ``--help``."""

from __future__ import annotations

import math
import os
import sys
import webbrowser
from typing import Any

import click

from . import __version__
from .config import SETTINGS, SETTINGS_BY_NAME, Config, Setting


class FiniteFloat(click.FloatRange):
    """click's FloatRange, refusing nan and inf too (nan passes any range check)."""

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        out = super().convert(value, param, ctx)
        if not math.isfinite(out):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return out


def number_type(s: Setting) -> Any:
    """The click type of a setting: its Python type, with its minimum when it has one."""
    if s.type is float:
        return FiniteFloat(min=s.minimum)
    if s.type is int and s.minimum is not None:
        return click.IntRange(min=int(s.minimum))
    return s.type


RETRY_SCALE = number_type(SETTINGS_BY_NAME["retry_scale"])


def config_from_env(**overrides: Any) -> Config:
    """Config.from_env, with a bad INSPECTOR_* value as one line and exit 2 (no traceback)."""
    try:
        return Config.from_env(**overrides)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


def setting_options(func: Any) -> Any:
    """One click option per Setting, each also read from INSPECTOR_<NAME>."""
    for s in reversed(SETTINGS):
        kwargs: dict[str, Any] = {"envvar": s.envvar, "show_envvar": True, "help": s.help,
                                  "default": None}
        if s.is_flag:
            kwargs.update(is_flag=True, default=None)
        elif s.multiple:
            kwargs.update(type=s.type, multiple=True)
        else:
            kwargs["type"] = number_type(s)
            if s.default is not None:
                kwargs["help"] = f"{s.help} [default: {s.default}]"
        func = click.option(s.option, s.name, **kwargs)(func)
    return func


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="webhook-inspector")
def main() -> None:
    """Capture, inspect and replay webhooks locally, and mock real webhook vendors."""


@main.command()
@setting_options
def serve(**values: Any) -> None:
    """Serve the inspector UI, the API, the websocket and the capture URLs on one port."""
    from .server import PortInUse
    from .server import serve as run
    from .storage.db import SYNC_MODES

    config = config_from_env(**{k: v for k, v in values.items() if v is not None})
    if config.sync not in SYNC_MODES:
        click.echo(f"error: --sync must be one of {', '.join(SYNC_MODES)}, not "
                   f"{config.sync!r}", err=True)
        sys.exit(2)
    if config.fixtures:  # read by the catalog in every worker and by the start-up check
        os.environ["INSPECTOR_FIXTURES"] = config.fixtures
    on_ready = (lambda url: webbrowser.open(url)) if config.open else None
    try:
        run(config, on_ready=on_ready)
    except PortInUse as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


# -- the mock provider ----------------------------------------------------------------------------
def _catalog() -> Any:
    from .provider import default_catalog

    return default_catalog()


def _vendor_event(vendor: str, event: str) -> Any:
    """The vendor, after checking the event exists; exit 2 naming whichever is unknown."""
    from .provider import UnknownEventError, UnknownVendorError

    try:
        v = _catalog().vendor(vendor)
        v.event(event)
    except (UnknownVendorError, UnknownEventError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    return v


def _overrides(sets: tuple[str, ...]) -> dict[str, object]:
    from .provider import OverrideError, parse_set_args

    try:
        return parse_set_args(sets)
    except OverrideError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print GET /api/vendors' JSON instead.")
def vendors(as_json: bool) -> None:
    """List the vendors the mock provider imitates and the events each sends."""
    import json

    catalog = _catalog()
    if as_json:
        click.echo(json.dumps(catalog.to_public(), indent=2, ensure_ascii=False))
        return
    for v in catalog.vendors.values():
        rules = [f"signing: {v.signing}", "/".join(v.methods)]
        if v.https_only:
            rules.append("https only")
        if v.attempts > 1:
            rules.append(f"{v.attempts} attempts")
        click.echo(f"{v.id}  {v.name}  ({', '.join(rules)})")
        for name, ev in v.events.items():
            click.echo(f"  {name}" + (f"  {ev.description}" if ev.description else ""))
    if catalog.errors:
        click.echo(f"({len(catalog.errors)} fixture problem(s): run "
                   "'webhook-inspector fixtures check')", err=True)


@main.command()
@click.argument("vendor")
@click.argument("event")
@click.option("--seed", type=int, help="Same seed (and --set values) -> the same body bytes.")
@click.option("--secret", help="Signing secret (default: the vendor's documented demo secret).")
@click.option("--method", help="HTTP method, where the vendor offers several (e.g. GET).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a payload field, e.g. --set sender.email=a@b.c (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the sample API's JSON instead.")
def sample(vendor: str, event: str, seed: int | None, secret: str | None, method: str | None,
           sets: tuple[str, ...], as_json: bool) -> None:
    """Print the request VENDOR would send for EVENT (method, URL parameters, headers with a
    signature made now, body), without sending it."""
    import json
    import time

    from .delivery import preview
    from .delivery.report import format_request
    from .provider import ProviderError

    v = _vendor_event(vendor, event)
    overrides = _overrides(sets)
    try:
        rendered, prepared = preview(v, event, timestamp=int(time.time()), seed=seed,
                                     secret=secret, method=method, overrides=overrides)
    except ProviderError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    if as_json:
        click.echo(json.dumps({**prepared.to_public(), "seed": rendered.seed}, indent=2,
                              ensure_ascii=False))
        return
    click.echo(format_request(prepared.method, prepared.url_params, prepared.headers,
                              prepared.body))


@main.command()
@click.argument("vendor")
@click.argument("event")
@click.option("--to", "url", required=True, help="Target URL (e.g. http://127.0.0.1:8787/in/demo).")
@click.option("--seed", type=int, help="Same seed (and --set values) -> the same body bytes.")
@click.option("--secret", help="Signing secret (default: the vendor's documented demo secret).")
@click.option("--method", help="HTTP method, where the vendor offers several (e.g. GET).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a payload field, e.g. --set sender.email=a@b.c (repeatable).")
@click.option("--retry-scale", type=RETRY_SCALE, default=None, envvar="INSPECTOR_RETRY_SCALE",
              show_envvar=True, help="Multiply the vendor's retry delays; 0 retries at once.")
@click.option("--strict-vendor-rules", is_flag=True, default=None,
              envvar="INSPECTOR_STRICT_VENDOR_RULES", show_envvar=True,
              help="Refuse what the vendor would refuse (e.g. http:// for Audian).")
@click.option("--timeout", type=FiniteFloat(min=0, min_open=True),
              help="Seconds per attempt (default: the vendor's).")
@click.option("--db", envvar="INSPECTOR_DB", show_envvar=True,
              help="Database to log the delivery in (default: the server's default database, "
                   "so it shows in the UI).")
@click.option("-v", "--verbose", is_flag=True, help="Also print each attempt's request "
              "headers and the response.")
def send(vendor: str, event: str, url: str, seed: int | None, secret: str | None,
         method: str | None, sets: tuple[str, ...], retry_scale: float | None,
         strict_vendor_rules: bool | None, timeout: float | None, db: str | None,
         verbose: bool) -> None:
    """Send VENDOR's EVENT to --to URL as the vendor would (signature, headers, retries),
    print each attempt, and exit 0 only if it was delivered (1 if it failed, 2 for bad input).
    Needs no running server."""
    import threading

    from .delivery import DeliveryEngine, TargetRefused
    from .delivery.report import format_attempt, format_outcome
    from .provider import ProviderError
    from .storage import Database

    v = _vendor_event(vendor, event)
    overrides = _overrides(sets)
    config = config_from_env(retry_scale=retry_scale, strict_vendor_rules=strict_vendor_rules,
                             db=db)
    database = Database(config.db_path)
    engine = DeliveryEngine(database, catalog=_catalog(), retry_scale=config.retry_scale,
                            strict_vendor_rules=config.strict_vendor_rules)
    printed = 0
    lock = threading.Lock()

    def show(summary: dict[str, Any]) -> None:  # called by the engine after each change
        nonlocal printed
        with lock:
            if summary["attempt_count"] <= printed:
                return
            d = engine.store.get(summary["id"])
            for a in (d.attempts if d else [])[printed:]:
                line = format_attempt(a, verbose)
                if a.outcome == "retry" and d and d.next_attempt_at and d.claimed_by is None:
                    line += f" (next attempt at {d.next_attempt_at})"
                click.echo(line)
            printed = max(printed, len(d.attempts or []) if d else printed)

    engine.listeners.append(show)
    engine.start(own_only=True)
    d = None
    try:
        try:
            d = engine.send(v.id, event, url, seed=seed, method=method, secret=secret,
                            overrides=overrides, timeout=timeout)
        except (ProviderError, TargetRefused) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        click.echo(f"delivery {d.id}: {v.name} {event} -> {d.method} {url}")
        for warning in d.warnings:
            click.echo(f"warning: {warning}", err=True)
        final = engine.wait(d.id, None)
        if final is not None and not final.settled:
            final = engine.store.fail(d.id, "gave up waiting") or final
        show((final or d).summary())
        click.echo(format_outcome(final or d))
        sys.exit(0 if final is not None and final.status == "delivered" else 1)
    except KeyboardInterrupt:
        if d is not None:
            engine.store.fail(d.id, "interrupted before it settled (Ctrl-C)")
        click.echo("interrupted", err=True)
        sys.exit(130)
    finally:
        engine.close()
        database.close()


@main.group()
def fixtures() -> None:
    """Vendor fixture files (fixtures/<vendor>/…)."""


@fixtures.command("check")
@click.option("--root", type=click.Path(file_okay=False), default=None,
              help="Fixtures folder to check (default: the shipped one).")
def fixtures_check(root: str | None) -> None:
    """Load every fixture file and list each problem as file:line: field: message; exit 1
    if there is any."""
    from pathlib import Path

    from .provider import load_catalog

    catalog = load_catalog(Path(root) if root else None)
    for e in catalog.errors:
        where = e.file if e.line is None else f"{e.file}:{e.line}"
        click.echo(f"{where}: {e.field + ': ' if e.field else ''}{e.message}")
    events = sum(len(v.events) for v in catalog.vendors.values())
    summary = f"{len(catalog.vendors)} vendors, {events} events"
    if catalog.errors:
        click.echo(f"{len(catalog.errors)} problem(s); {summary} loaded", err=True)
        sys.exit(1)
    click.echo(f"ok: {summary}")


# -- local HTTPS ----------------------------------------------------------------------------------
@main.command()
@click.option("--path", "path_only", is_flag=True,
              help="Print only the path of the CA certificate (PEM), creating the CA if needed.")
def ca(path_only: bool) -> None:
    """Show where the local certificate authority of 'serve --tls' is and how to make curl,
    Python, Node.js and the OS trust it. The CA is created on first use, in the user data
    directory (never beside the database); its private key is readable by you only."""
    from .tls import TLSError, describe_ca, ensure_ca, trust_instructions

    try:
        files = ensure_ca()
    except (OSError, TLSError) as exc:
        click.echo(f"error: cannot create the local CA: {exc}", err=True)
        sys.exit(1)
    if path_only:
        click.echo(str(files.cert_path))
        return
    info = describe_ca(files.cert_path)
    port = config_from_env().tls_port
    click.echo(f"Local CA certificate: {files.cert_path}")
    click.echo(f"  {info.get('subject', '')}")
    click.echo(f"  SHA-256 {info.get('sha256', '?')}, valid until {info.get('not_after', '?')}")
    click.echo(f"Private key (owner only): {files.key_path}")
    click.echo(f"Serve over HTTPS with: webhook-inspector serve --tls   "
               f"(https://localhost:{port}/; the UI offers /ca.pem)")
    click.echo("")
    click.echo("Trust it:")
    click.echo(trust_instructions(files.cert_path, port))


@main.command()
@click.argument("name")
@click.option("--to", "url", help="Target URL (e.g. http://127.0.0.1:8787/in/demo).")
@click.option("--seed", type=int, help="Same seed -> the same bodies (step i uses seed + i).")
@click.option("--secret", help="Signing secret (default: the vendor's documented demo secret).")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="Override a payload field in every step (repeatable).")
@click.option("--delay-scale", type=float, default=1.0, show_default=True,
              help="Multiply the scenario's delays; 0 sends the steps back to back.")
@click.option("--retry-scale", type=RETRY_SCALE, default=None, envvar="INSPECTOR_RETRY_SCALE",
              show_envvar=True, help="Multiply the vendor's retry delays; 0 retries at once.")
@click.option("--db", envvar="INSPECTOR_DB", show_envvar=True,
              help="Database to log the deliveries in (default: the server's default).")
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and exit.")
def scenario(name: str, url: str | None, seed: int | None, secret: str | None,
             sets: tuple[str, ...], delay_scale: float, retry_scale: float | None, db: str | None,
             list_only: bool) -> None:
    """Send scenario NAME (fixtures/scenarios/NAME.yaml: a vendor's events in order, with
    delays and shared ids) to --to URL; prints each step and exits 0 only if every step was
    delivered (1 if one failed, 2 for bad input). Needs no running server."""
    from .delivery import DeliveryEngine, TargetRefused
    from .provider import ProviderError
    from .provider.scenario import get_scenario, load_scenarios, render_scenario
    from .storage import Database
    from .subscriptions import run_steps

    catalog = _catalog()
    try:
        if list_only:
            for sc in load_scenarios(catalog=catalog).values():
                click.echo(f"{sc.name}  ({sc.vendor}, {len(sc.steps)} steps)  {sc.description}")
            return
        if not url:
            click.echo("error: --to URL is required", err=True)
            sys.exit(2)
        sc = get_scenario(name, catalog=catalog)
        planned, shared = render_scenario(catalog, sc, seed=seed, overrides=_overrides(sets))
    except ProviderError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    config = config_from_env(retry_scale=retry_scale, db=db)
    database = Database(config.db_path)
    engine = DeliveryEngine(database, catalog=catalog, retry_scale=config.retry_scale,
                            strict_vendor_rules=config.strict_vendor_rules)
    engine.start(own_only=True)
    click.echo(f"scenario {sc.name}: {len(planned)} {sc.vendor} events -> {url}")
    click.echo("shared: " + ", ".join(f"{k}={v}" for k, v in shared.items()))
    failed = 0

    def send(p: Any) -> None:
        nonlocal failed
        d = engine.send(sc.vendor, p.step.event, url, rendered=p.rendered, secret=secret)
        final = engine.wait(d.id, None) or d
        if not final.settled:
            final = engine.store.fail(d.id, "gave up waiting") or final
        failed += final.status != "delivered"
        status = final.last_status if final.last_status is not None else final.last_error
        click.echo(f"  +{p.at:g}s {p.step.event}: {final.status} (delivery {d.id}, "
                   f"{final.attempt_count} attempt(s), last: {status})")

    try:
        run_steps(planned, send, delay_scale=max(0.0, delay_scale))
    except (ProviderError, TargetRefused) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    finally:
        engine.close()
        database.close()
    sys.exit(1 if failed else 0)
