"""The load's clients speak from inside a container on the gateways' network, not from the host.

Podman 4.3 with netavark 1.4 (Debian 12) cuts the host's established connections to every
container of a bridge network when any other container of it exits (seen: a stream from one
container stopped the moment another was stopped; container-to-container streams went on). A
gateway stopped mid-load would then look as if the *other* gateway had lost its requests. So the
clients' threads enter the network namespace of a container on that network (``setns`` applies
to the calling thread only) and talk to the gateways as the proxy does, container to container.
"""

from __future__ import annotations

import ctypes
import os

CLONE_NEWNET = 0x40000000


def enter(namespace: str) -> None:
    """Move the calling thread into the network namespace at ``namespace`` (a /proc path)."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(namespace, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"setns({namespace}): {os.strerror(error)}")
    finally:
        os.close(fd)
