"""The runtime's action kits: ``event.dispatch`` and ``automation.trigger`` (see ``_catalog``)."""
