"""Example third-party Oneiric plugin: greeter services and a veto policy.

Kept empty on purpose: discovery imports ``oneiric_example_greeter.plugin``,
which imports this package, so anything heavy here (pydantic, clients) would
be paid by every process that loads plugins.  Providers live in ``providers``.
"""
