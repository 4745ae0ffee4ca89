"""The ``webhook-inspector`` command. Each command's docstring is its ``--help``."""

from __future__ import annotations

import sys
import webbrowser
from typing import Any

import click

from . import __version__
from .config import SETTINGS, Config


def setting_options(func: Any) -> Any:
    """One click option per Setting, each also read from INSPECTOR_<NAME>."""
    for s in reversed(SETTINGS):
        kwargs: dict[str, Any] = {"envvar": s.envvar, "show_envvar": True, "help": s.help,
                                  "default": None}
        if s.is_flag:
            kwargs.update(is_flag=True, default=None)
        else:
            kwargs["type"] = s.type
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

    config = Config.from_env(**{k: v for k, v in values.items() if v is not None})
    on_ready = (lambda url: webbrowser.open(url)) if config.open else None
    try:
        run(config, on_ready=on_ready)
    except PortInUse as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
