"""webhook-inspector: capture, inspect and mock webhooks on your own machine."""

__version__ = "0.1.0"
