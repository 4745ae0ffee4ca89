"""pytest plugin: fixtures for testing webhook integrations against webhook-inspector.

Registered through the ``pytest11`` entry point, so installing the package makes the fixtures
available. (Being built: see the plugin issue.)
"""
