"""``instance_id()``: the one name a process gives itself to its peers (ARCHITECTURE §12)."""

from __future__ import annotations


def test_instance_id_is_the_variable_or_host_and_pid() -> None:
    import os
    import socket

    from oneiric.core.helpers import instance_id

    assert instance_id({"ONEIRIC_INSTANCE_ID": " web-1 "}) == "web-1"
    assert instance_id({}) == f"{socket.gethostname()}:{os.getpid()}"
    assert instance_id({"ONEIRIC_INSTANCE_ID": "  "}) == f"{socket.gethostname()}:{os.getpid()}"
