"""The mock webhook provider: vendor fixtures in, exact vendor requests out.

- `load_catalog()` reads `fixtures/<vendor>/…` into vendors and events (never raises; broken
  files are listed in `Catalog.errors`).
- `render(vendor, event, seed=…)` builds the payload and the exact body bytes;
  `prepare(rendered, secret=…, timestamp=…, attempt=n)` adds one attempt's headers and signature.

No Flask, no I/O besides reading the fixture files, no network: the web layer and the delivery
module call these.
"""

from .catalog import default_catalog, default_root, load_catalog
from .errors import (
    FixtureError,
    MethodNotAllowedError,
    OverrideError,
    ProviderError,
    RenderError,
    UnknownEventError,
    UnknownVendorError,
)
from .model import BatchSpec, Catalog, Event, HeaderSpec, Provenance, Vendor
from .render import (
    Prepared,
    Rendered,
    parse_override_value,
    parse_set_args,
    prepare,
    render,
)

__all__ = [
    "BatchSpec", "Catalog", "Event", "FixtureError", "HeaderSpec", "MethodNotAllowedError",
    "OverrideError", "Prepared", "Provenance", "ProviderError", "RenderError", "Rendered",
    "UnknownEventError", "UnknownVendorError", "Vendor", "default_catalog", "default_root",
    "load_catalog", "parse_override_value", "parse_set_args", "prepare", "render",
]
