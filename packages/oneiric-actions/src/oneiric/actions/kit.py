"""Helpers for writing an action kit: the ones every first-party kit uses.

Public so that a third-party kit words bad input exactly as Oneiric's own do
(``action 'x.y': payload field url must be a string, got int``) and imports
its library the same way (one line naming the extra to install):

- ``fields_of(payload, key, allowed)``: the payload as a mapping of known fields;
- ``take(payload, key, name, kinds, default=...)``: one typed field;
- ``require(module, provider=, extra=)``: a third-party library at activation;
- ``binary(value, path)``: bytes from bytes, ``{"base64": ...}`` or text;
- ``current_lifecycle()``: the ``LifecycleManager`` whose ``Actions.invoke`` is
  running this call (for kits that reach other components: the event and
  workflow kits).
"""

from __future__ import annotations

from ._invoke import current_lifecycle
from ._json import binary
from ._kits._common import fields_of, require, take

__all__ = ["binary", "current_lifecycle", "fields_of", "require", "take"]
