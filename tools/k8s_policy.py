"""What every rendered Kubernetes object of ours must satisfy (``make k8s-validate``, and
``tests/unit/test_k8s_manifests.py`` over every overlay and over broken fixtures).

Workloads: liveness and readiness probes (one-shot Jobs apart), CPU and memory requests and
limits, non-root with no privileges, pinned images. Secrets: no value in any manifest (Secret
data, an environment value, a command line, a URL), and every Secret a workload reads is one
``infra/k8s/secrets.example.yaml`` declares, key included. References (ConfigMaps, volumes,
service accounts, Services' selectors and ports, autoscaler targets) resolve. CloudNativePG's
``Cluster`` and the Inference Extension's ``InferencePool`` have no schema we can install: their
required fields are checked here.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SECRETS_EXAMPLE = ROOT / "infra/k8s/secrets.example.yaml"
NAMESPACE = "switchboard"
OWN_CHECKED_KINDS = frozenset({"Cluster", "InferencePool"})
LONG_RUNNING = frozenset({"Deployment", "StatefulSet", "DaemonSet"})
SECRET_NAME = re.compile(r"PASSWORD|PASS$|SECRET|TOKEN|API_KEY", re.IGNORECASE)
SECRET_FLAG = re.compile(r"--(api-key|password|token|secret)\b")
PASSWORD_URL = re.compile(r"\w+://[^/@\s:]+:[^/@\s]+@")
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
NOT_SECRET = {"kubernetes.io/basic-auth": {"username"}}
"""Keys of a Secret type that may carry a value in a manifest: a user name is no secret."""

Manifest = dict[str, Any]


def name_of(obj: Manifest) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def pod_spec(obj: Manifest) -> dict[str, Any] | None:
    spec = obj.get("spec") or {}
    if obj.get("kind") == "CronJob":
        spec = spec.get("jobTemplate", {}).get("spec", {})
    template = spec.get("template")
    return template.get("spec") if isinstance(template, dict) else None


def pod_labels(obj: Manifest) -> dict[str, str]:
    return dict(obj.get("spec", {}).get("template", {}).get("metadata", {}).get("labels") or {})


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec.get("containers", [])]


def example_secrets(path: Path = SECRETS_EXAMPLE) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


# --- workloads ------------------------------------------------------------------------------


def probe_problems(obj: Manifest, spec: dict[str, Any]) -> Iterator[str]:
    if obj["kind"] not in LONG_RUNNING:
        return
    for container in spec.get("containers", []):
        for probe in ("livenessProbe", "readinessProbe"):
            if not container.get(probe):
                yield f"{name_of(obj)}: container {container['name']} has no {probe}"


def resource_problems(obj: Manifest, spec: dict[str, Any]) -> Iterator[str]:
    for container in containers(spec):
        resources = container.get("resources") or {}
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in (resources.get(kind) or {}):
                    yield f"{name_of(obj)}: container {container['name']} has no {resource} {kind}"


def security_problems(obj: Manifest, spec: dict[str, Any]) -> Iterator[str]:
    pod = spec.get("securityContext") or {}
    for host in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(host):
            yield f"{name_of(obj)}: {host}"
    for container in containers(spec):
        own = container.get("securityContext") or {}
        where = f"{name_of(obj)}: container {container['name']}"
        if not own.get("runAsNonRoot", pod.get("runAsNonRoot")):
            yield f"{where} is not runAsNonRoot"
        if own.get("runAsUser", pod.get("runAsUser")) in (None, 0):
            yield f"{where} has no non-zero runAsUser (the image's user may be root)"
        if own.get("allowPrivilegeEscalation") is not False:
            yield f"{where} does not set allowPrivilegeEscalation: false"
        if own.get("privileged"):
            yield f"{where} is privileged"
        if "ALL" not in (own.get("capabilities") or {}).get("drop", []):
            yield f"{where} does not drop ALL capabilities"
        seccomp = own.get("seccompProfile") or pod.get("seccompProfile") or {}
        if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
            yield f"{where} has no RuntimeDefault seccomp profile"


def image_problems(obj: Manifest, spec: dict[str, Any]) -> Iterator[str]:
    for container in containers(spec):
        image = str(container.get("image", ""))
        if DIGEST.search(image):
            continue
        _, _, last = image.rpartition("/")
        _, colon, tag = last.partition(":")
        if not colon or tag == "latest" or not re.search(r"\d", tag):
            yield f"{name_of(obj)}: image {image!r} is not pinned to a version or digest"


def environment_problems(obj: Manifest, spec: dict[str, Any]) -> Iterator[str]:
    for container in containers(spec):
        where = f"{name_of(obj)}: container {container['name']}"
        for variable in container.get("env", []):
            name, value = variable["name"], variable.get("value")
            if SECRET_NAME.search(name) and not name.endswith(("_FILE", "_PATH")) and value:
                yield f"{where}: {name} holds a value (read it from a Secret file)"
            if value and PASSWORD_URL.search(str(value)):
                yield f"{where}: {name} holds a URL with a password"
        command = " ".join(map(str, [*container.get("command", []), *container.get("args", [])]))
        if flag := SECRET_FLAG.search(command):
            yield f"{where}: a secret on the command line ({flag[0]})"
        if PASSWORD_URL.search(command):
            yield f"{where}: a URL with a password on the command line"


def workload_problems(obj: Manifest) -> Iterator[str]:
    spec = pod_spec(obj)
    if spec is None:
        return
    for check in (
        probe_problems,
        resource_problems,
        security_problems,
        image_problems,
        environment_problems,
    ):
        yield from check(obj, spec)


# --- secrets and settings -------------------------------------------------------------------


def secret_value_problems(obj: Manifest) -> Iterator[str]:
    if obj.get("kind") == "Secret":
        allowed = NOT_SECRET.get(str(obj.get("type")), set())
        for field in ("data", "stringData"):
            for key, value in (obj.get(field) or {}).items():
                if value and key not in allowed:
                    yield f"{name_of(obj)}: {field}.{key} holds a value (placeholders only)"
    if obj.get("kind") == "ConfigMap":
        for key, value in (obj.get("data") or {}).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE") and value:
                yield f"{name_of(obj)}: {key} holds a value (use {key}_FILE and a Secret)"
            if PASSWORD_URL.search(str(value)):
                yield f"{name_of(obj)}: {key} holds a URL with a password"


def secret_references(obj: Manifest) -> Iterator[tuple[str, str | None, bool]]:
    """(secret, key or None, optional) for every Secret the object reads."""
    spec = pod_spec(obj)
    if spec is not None:
        for volume in spec.get("volumes", []):
            secret = volume.get("secret")
            if secret:
                keys = [item["key"] for item in secret.get("items", [])] or [None]
                for key in keys:
                    yield secret["secretName"], key, bool(secret.get("optional"))
        for container in containers(spec):
            for source in container.get("envFrom", []):
                if "secretRef" in source:
                    ref = source["secretRef"]
                    yield ref["name"], None, bool(ref.get("optional"))
            for variable in container.get("env", []):
                ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    yield ref["name"], ref["key"], bool(ref.get("optional"))
    kind, body = obj.get("kind"), obj.get("spec") or {}
    if kind == "Ingress":
        for tls in body.get("tls", []):
            yield tls["secretName"], None, False
    if kind == "ServiceMonitor":
        for endpoint in body.get("endpoints", []):
            credentials = (endpoint.get("authorization") or {}).get("credentials")
            if credentials:
                yield credentials["name"], credentials["key"], False
    if kind == "Cluster":
        secret = body.get("bootstrap", {}).get("initdb", {}).get("secret")
        if secret:
            yield secret["name"], "password", False


def reference_problems(objects: list[Manifest], declared: list[Manifest]) -> Iterator[str]:
    present = {(o["kind"], o["metadata"]["name"]) for o in objects}
    keys: dict[str, set[str]] = {}
    for source in [*declared, *(o for o in objects if o["kind"] == "Secret")]:
        keys.setdefault(source["metadata"]["name"], set()).update(
            {*(source.get("data") or {}), *(source.get("stringData") or {})}
        )
    for obj in objects:
        for secret, key, optional in secret_references(obj):
            if optional:
                continue
            if secret not in keys:
                yield f"{name_of(obj)}: reads Secret {secret}, which secrets.example.yaml lacks"
            elif key is not None and key not in keys[secret] and obj["kind"] != "Ingress":
                yield f"{name_of(obj)}: reads {secret}.{key}, which secrets.example.yaml lacks"
        spec = pod_spec(obj)
        if spec is None:
            continue
        claims = {t["metadata"]["name"] for t in obj["spec"].get("volumeClaimTemplates", [])}
        account = spec.get("serviceAccountName")
        if account and ("ServiceAccount", account) not in present:
            yield f"{name_of(obj)}: no ServiceAccount {account}"
        for volume in spec.get("volumes", []):
            config = (volume.get("configMap") or {}).get("name")
            if config and ("ConfigMap", config) not in present:
                yield f"{name_of(obj)}: no ConfigMap {config}"
            claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
            if claim and ("PersistentVolumeClaim", claim) not in present:
                yield f"{name_of(obj)}: no PersistentVolumeClaim {claim}"
        for container in containers(spec):
            for mount in container.get("volumeMounts", []):
                volumes = {v["name"] for v in spec.get("volumes", [])} | claims
                if mount["name"] not in volumes:
                    yield f"{name_of(obj)}: mounts {mount['name']}, which is no volume"
            for source in container.get("envFrom", []):
                config = (source.get("configMapRef") or {}).get("name")
                if config and ("ConfigMap", config) not in present:
                    yield f"{name_of(obj)}: no ConfigMap {config}"


def service_problems(objects: list[Manifest]) -> Iterator[str]:
    workloads = [o for o in objects if pod_spec(o) is not None]
    present = {(o["kind"], o["metadata"]["name"]) for o in objects}
    for obj in objects:
        kind, spec = obj["kind"], obj.get("spec") or {}
        if kind == "Service":
            selector = spec.get("selector") or {}
            matching = [w for w in workloads if selector.items() <= pod_labels(w).items()]
            if not matching:
                yield f"{name_of(obj)}: selects no pods"
            ports = {
                p.get("name")
                for w in matching
                for c in containers(pod_spec(w) or {})
                for p in c.get("ports", [])
            }
            for port in spec.get("ports", []):
                target = port.get("targetPort")
                if isinstance(target, str) and matching and target not in ports:
                    yield f"{name_of(obj)}: targetPort {target} is no container port"
        target = spec.get("scaleTargetRef")
        scaled = kind in ("HorizontalPodAutoscaler", "ScaledObject")
        if scaled and target and (target.get("kind", "Deployment"), target["name"]) not in present:
            yield f"{name_of(obj)}: scales {target['name']}, which does not exist"
        if kind == "PodDisruptionBudget":
            selector = spec.get("selector", {}).get("matchLabels", {})
            if not any(selector.items() <= pod_labels(w).items() for w in workloads):
                yield f"{name_of(obj)}: covers no pods"


# --- custom resources without an installable schema -----------------------------------------


def own_schema_problems(objects: list[Manifest]) -> Iterator[str]:
    services = {o["metadata"]["name"] for o in objects if o["kind"] == "Service"}
    workloads = [o for o in objects if pod_spec(o) is not None]
    for obj in objects:
        spec, where = obj.get("spec") or {}, name_of(obj)
        if obj["kind"] == "Cluster":
            if obj.get("apiVersion") != "postgresql.cnpg.io/v1":
                yield f"{where}: apiVersion is not postgresql.cnpg.io/v1"
            instances = spec.get("instances")
            if not isinstance(instances, int) or instances < 1:
                yield f"{where}: spec.instances (required) must be a positive integer"
            if not (spec.get("storage") or {}).get("size"):
                yield f"{where}: spec.storage.size is missing"
            fake = {"metadata": {"name": where}, "kind": "Cluster"}
            yield from image_problems(fake, {"containers": [{"image": spec.get("imageName")}]})
        if obj["kind"] == "InferencePool":
            if obj.get("apiVersion") != "inference.networking.k8s.io/v1":
                yield f"{where}: apiVersion is not inference.networking.k8s.io/v1"
            labels = (spec.get("selector") or {}).get("matchLabels") or {}
            if not labels or not any(labels.items() <= pod_labels(w).items() for w in workloads):
                yield f"{where}: spec.selector.matchLabels (required) selects no pods"
            ports = spec.get("targetPorts") or []
            if len(ports) != 1 or not 0 < int(ports[0].get("number", 0)) < 65536:
                yield f"{where}: spec.targetPorts (required) must be one port number"
            picker = spec.get("endpointPickerRef") or {}
            if picker.get("name") not in services:
                yield f"{where}: spec.endpointPickerRef.name (required) is no Service"


def policy_problems(objects: list[Manifest], declared: list[Manifest] | None = None) -> list[str]:
    """Every problem of a rendered overlay (``declared``: the placeholder Secrets)."""
    declared = example_secrets() if declared is None else declared
    found: list[str] = []
    for obj in objects:
        found += [*workload_problems(obj), *secret_value_problems(obj)]
        namespace = obj.get("metadata", {}).get("namespace")
        if obj.get("kind") != "Namespace" and namespace != NAMESPACE:
            found.append(f"{name_of(obj)}: in namespace {namespace!r}, not {NAMESPACE!r}")
    found += [*reference_problems(objects, declared), *service_problems(objects)]
    found += own_schema_problems(objects)
    return found
