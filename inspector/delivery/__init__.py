"""Outbound deliveries: the only package that makes HTTP requests to the outside world.

``DeliveryEngine`` records each delivery and its attempts (storage/deliveries.py), retries on
the sender's schedule and survives restarts; ``RetryPolicy`` is that schedule; ``check_url``
and ``OwnServer`` keep deliveries from looping back into this server's own API.
"""

from .engine import DeliveryEngine, ReplayError, iso
from .policy import RetryPolicy
from .requests import preview, with_params
from .sender import default_ssl_context
from .targets import OwnServer, TargetRefused, check_url, own_ports

__all__ = [
    "DeliveryEngine",
    "OwnServer",
    "ReplayError",
    "RetryPolicy",
    "TargetRefused",
    "check_url",
    "default_ssl_context",
    "iso",
    "own_ports",
    "preview",
    "with_params",
]
