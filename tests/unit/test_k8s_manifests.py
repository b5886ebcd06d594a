"""infra/k8s: every overlay renders (kubectl kustomize), its built-in objects pass Kubernetes
1.37's schemas strictly, and every object passes tools/k8s_policy.py; each policy check fails
on a broken fixture. The CRD schemas (KEDA, prometheus-operator, Gateway API) are checked by
`make k8s-validate` (Node.js), not here."""

from __future__ import annotations

import copy
import re
import shutil
from functools import cache
from typing import Any

import pytest
import yaml
from tools.k8s_manifests import core_problems, crd_problems, load, overlays, render
from tools.k8s_policy import example_secrets, own_schema_problems, policy_problems

from tests.conftest import REPO_ROOT

Manifest = dict[str, Any]
OVERLAYS = overlays()
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.prod.yml").read_text())["services"]


class ComposeOverride(yaml.SafeLoader):
    """Compose's override tags (``!reset``) read as nothing: only the values are compared."""


ComposeOverride.add_constructor("!reset", lambda loader, node: None)
SCALE = yaml.load(
    (REPO_ROOT / "docker-compose.scale.yml").read_text(),
    ComposeOverride,  # noqa: S506  # a SafeLoader with one more tag
)["services"]


@cache
def rendered(overlay: str) -> list[Manifest]:
    return load(render(overlay))


def find(objects: list[Manifest], kind: str, name: str) -> Manifest:
    return next(o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name)


def container(objects: list[Manifest], name: str) -> dict[str, Any]:
    deployment = find(objects, "Deployment", name)
    first: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return first


def settings(objects: list[Manifest]) -> dict[str, str]:
    config = next(o for o in objects if o["metadata"]["name"].startswith("switchboard-settings"))
    return dict(config["data"])


def test_the_overlays_are_dev_prod_and_the_inference_gateway_alternative() -> None:
    assert OVERLAYS == ["dev", "prod", "prod-inference-gateway"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_the_kubernetes_schemas_strictly(overlay: str) -> None:
    assert core_problems(rendered(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_passes_the_policy(overlay: str) -> None:
    assert policy_problems(rendered(overlay)) == []


# --- each check can fail --------------------------------------------------------------------

GOOD: Manifest = yaml.safe_load("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: switchboard}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      securityContext:
        {runAsNonRoot: true, runAsUser: 10001, seccompProfile: {type: RuntimeDefault}}
      containers:
        - name: web
          image: ghcr.io/example/web:1.2.3
          env:
            - {name: WEB_TOKEN_FILE, value: /run/secrets/web/token}
          ports: [{name: http, containerPort: 8000}]
          livenessProbe: {httpGet: {path: /healthz, port: http}}
          readinessProbe: {httpGet: {path: /readyz, port: http}}
          resources:
            requests: {cpu: 100m, memory: 64Mi}
            limits: {cpu: "1", memory: 128Mi}
          securityContext:
            allowPrivilegeEscalation: false
            capabilities: {drop: [ALL]}
""")


def broken(change: str, value: Any = None) -> list[Manifest]:
    """GOOD with one change: a dotted path set to ``value`` (None: the key removed)."""
    deployment = copy.deepcopy(GOOD)
    *parents, last = change.split(".")
    node: Any = deployment
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return [deployment]


C = "spec.template.spec.containers.0"


def test_the_good_fixture_passes() -> None:
    assert core_problems([GOOD]) == []
    assert policy_problems([GOOD], declared=[]) == []


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        (broken(f"{C}.readinessProbe"), "has no readinessProbe"),
        (broken(f"{C}.livenessProbe"), "has no livenessProbe"),
        (broken(f"{C}.resources.limits"), "has no cpu limits"),
        (broken(f"{C}.resources.requests.memory"), "has no memory requests"),
        (broken("spec.template.spec.securityContext.runAsNonRoot"), "is not runAsNonRoot"),
        (broken("spec.template.spec.securityContext.runAsUser", 0), "no non-zero runAsUser"),
        (broken(f"{C}.securityContext.allowPrivilegeEscalation"), "allowPrivilegeEscalation"),
        (broken(f"{C}.securityContext.capabilities"), "does not drop ALL"),
        (broken("spec.template.spec.securityContext.seccompProfile"), "seccomp"),
        (broken("spec.template.spec.hostNetwork", True), "hostNetwork"),
        (broken(f"{C}.image", "ghcr.io/example/web:latest"), "is not pinned"),
        (broken(f"{C}.image", "ghcr.io/example/web"), "is not pinned"),
        (broken(f"{C}.image", "switchboard-gateway"), "is not pinned"),
        (broken(f"{C}.env", [{"name": "WEB_API_KEY", "value": "sk-live"}]), "holds a value"),
        (
            broken(f"{C}.env", [{"name": "DB", "value": "postgresql://u:pw@db/x"}]),
            "a URL with a password",
        ),
        (broken(f"{C}.args", ["--api-key", "abc"]), "a secret on the command line"),
        (broken("metadata.namespace", "default"), "not 'switchboard'"),
    ],
)
def test_each_workload_check_fails_on_a_broken_fixture(
    objects: list[Manifest], expected: str
) -> None:
    found = policy_problems(objects, declared=[])
    assert any(expected in problem for problem in found), found


def test_a_job_needs_no_probes_but_everything_else() -> None:
    job = copy.deepcopy(GOOD) | {"apiVersion": "batch/v1", "kind": "Job"}
    spec = job["spec"]["template"]["spec"]
    for probe in ("livenessProbe", "readinessProbe"):
        del spec["containers"][0][probe]
    assert policy_problems([job], declared=[]) == []
    del spec["containers"][0]["resources"]
    assert policy_problems([job], declared=[])


def test_an_inline_secret_value_fails() -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": "s", "namespace": "switchboard"},
        "stringData": {"token": "hunter2-but-longer"},
    }
    assert any("holds a value" in p for p in policy_problems([secret], declared=[]))
    encoded = secret | {"data": {"token": "aHVudGVyMg=="}, "stringData": {}}
    assert any("data.token holds a value" in p for p in policy_problems([encoded], declared=[]))
    user = secret | {"type": "kubernetes.io/basic-auth", "stringData": {"username": "sb"}}
    assert policy_problems([user], declared=[]) == []
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "switchboard"},
        "data": {"SWITCHBOARD_SECRET_KEY": "x" * 40},
    }
    assert any("use SWITCHBOARD_SECRET_KEY_FILE" in p for p in policy_problems([config], []))


def test_a_secret_read_but_not_declared_fails() -> None:
    reader = broken(
        "spec.template.spec.volumes", [{"name": "s", "secret": {"secretName": "missing"}}]
    )
    assert any("reads Secret missing" in p for p in policy_problems(reader, declared=[]))
    keyed = broken(
        f"{C}.env",
        [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "switchboard-secrets", "key": "x"}}}],
    )
    found = policy_problems(keyed, declared=example_secrets())
    assert any("reads switchboard-secrets.x" in p for p in found), found


def test_the_kubernetes_schema_rejects_an_unknown_field() -> None:
    typo = broken(f"{C}.readinesProbe", {"httpGet": {"path": "/", "port": 80}})
    assert core_problems(typo)


CLUSTER = "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: pg}\n"
POOL = "apiVersion: inference.networking.k8s.io/v1\nkind: InferencePool\nmetadata: {name: p}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (CLUSTER + "spec: {storage: {size: 1Gi}, imageName: x/pg:15.20}", "spec.instances"),
        (
            CLUSTER + "spec: {instances: 1, storage: {size: 1Gi}, imageName: x/pg:latest}",
            "is not pinned",
        ),
        (
            POOL + "spec: {targetPorts: [{number: 8000}], endpointPickerRef: {name: epp}}",
            "spec.selector.matchLabels",
        ),
        (
            POOL + "spec: {selector: {matchLabels: {app: web}}, targetPorts: [{number: 8000}],"
            " endpointPickerRef: {name: nowhere}}",
            "endpointPickerRef.name",
        ),
    ],
)
def test_the_custom_resources_without_a_schema_are_checked(text: str, expected: str) -> None:
    found = list(own_schema_problems([GOOD, yaml.safe_load(text)]))
    assert any(expected in problem for problem in found), found


@pytest.mark.skipif(shutil.which("node") is None, reason="the CRD validators need Node.js")
def test_the_crd_validators_reject_a_broken_custom_resource() -> None:
    scaled = copy.deepcopy(find(rendered("prod"), "ScaledObject", "vllm"))
    assert crd_problems([scaled]) == []
    del scaled["spec"]["scaleTargetRef"]
    assert any("scaleTargetRef" in problem for problem in crd_problems([scaled]))
    monitor = copy.deepcopy(find(rendered("prod"), "ServiceMonitor", "gateway"))
    monitor["spec"]["endpoints"][0]["interval"] = 15
    assert any("interval must be string" in problem for problem in crd_problems([monitor]))
    unknown = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert crd_problems([unknown]) == [
        "example.com/v1/Widget w: no schema for example.com/v1/Widget"
    ]


# --- what the manifests run -------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_gateway_gets_the_settings_compose_gives_it(overlay: str) -> None:
    """Compose's scale-out topology (the production file with docker-compose.scale.yml): a
    router in front of the replicas, as on Kubernetes."""
    compose = {**COMPOSE["gateway"]["environment"], **SCALE["gateway"]["environment"]}
    ours = settings(rendered(overlay))
    assert set(ours) == set(compose)
    same = ("ENVIRONMENT", "REDIS_URL", "CACHE_REDIS_URL", "UPSTREAM_CONNECT_RETRIES")
    for name in [f"SWITCHBOARD_{n}" for n in same]:
        assert ours[name] == compose[name]
    for name in [n for n in compose if n.endswith("_FILE")]:
        assert ours[name].startswith("/run/secrets/")
    known = set(re.findall(r"^(SWITCHBOARD_\w+)=", (REPO_ROOT / ".env.example").read_text(), re.M))
    assert {name.removesuffix("_FILE") for name in ours} <= known


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_images_are_the_ones_compose_runs(overlay: str) -> None:
    objects = rendered(overlay)
    assert container(objects, "gateway")["image"].endswith("/switchboard-gateway:0.1.0")
    redis = find(objects, "StatefulSet", "redis")["spec"]["template"]["spec"]["containers"][0]
    assert redis["image"] == COMPOSE["redis"]["image"]
    assert redis["args"] == COMPOSE["redis"]["command"]
    cache_args = container(objects, "redis-cache")["args"]
    assert cache_args == COMPOSE["redis-cache"]["command"]


def test_dev_runs_the_cpu_image_one_replica_each() -> None:
    objects = rendered("dev")
    assert container(objects, "vllm")["image"].endswith("/switchboard-model-cpu:0.1.0")
    for deployment in (o for o in objects if o["kind"] in ("Deployment", "StatefulSet")):
        assert deployment["spec"].get("replicas", 1) == 1, deployment["metadata"]["name"]
    postgres = find(objects, "StatefulSet", "postgres")["spec"]["template"]["spec"]
    assert postgres["containers"][0]["image"] == COMPOSE["postgres"]["image"]
    assert "nvidia.com/gpu" not in str(objects)


@pytest.mark.parametrize("overlay", ["prod", "prod-inference-gateway"])
def test_prod_runs_vllm_on_a_gpu_with_a_model_cache_and_a_long_startup(overlay: str) -> None:
    objects = rendered(overlay)
    vllm = container(objects, "vllm")
    assert vllm["image"] == COMPOSE["model"]["image"]
    assert vllm["resources"]["limits"]["nvidia.com/gpu"] == "1"
    startup = vllm["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 900  # compose start_period
    assert {"name": "model-cache", "mountPath": "/models"} in vllm["volumeMounts"]
    assert find(objects, "PersistentVolumeClaim", "model-cache")
    assert find(objects, "Cluster", "postgres")["spec"]["instances"] >= 2
    for autoscaled in ("gateway", "vllm"):  # the HPA and KEDA own these counts
        assert "replicas" not in find(objects, "Deployment", autoscaled)["spec"]
    scaled = find(objects, "ScaledObject", "vllm")
    assert "vllm:num_requests_waiting" in scaled["spec"]["triggers"][0]["metadata"]["query"]
    assert settings(objects)["SWITCHBOARD_DEFAULT_MODEL"] == "qwen2.5-7b-instruct"


def test_prod_serves_the_same_vllm_config_as_compose() -> None:
    copied = REPO_ROOT / "infra/k8s/overlays/prod/vllm.yaml"
    assert copied.read_text() == (REPO_ROOT / "model-server/gpu/vllm.yaml").read_text()


def ingress_peers(objects: list[Manifest], component: str) -> set[str]:
    """Who may reach pods of ``component``: the labels of each allowed peer, as text."""
    peers = set()
    for policy in (o for o in objects if o["kind"] == "NetworkPolicy"):
        selector = policy["spec"]["podSelector"]
        components = {selector.get("matchLabels", {}).get("app.kubernetes.io/component")}
        for expression in selector.get("matchExpressions", []):
            if expression["key"] == "app.kubernetes.io/component":
                components |= set(expression["values"])
        if component not in components:
            continue
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                labels = {
                    **peer.get("namespaceSelector", {}).get("matchLabels", {}),
                    **peer.get("podSelector", {}).get("matchLabels", {}),
                }
                peers.add(",".join(f"{k}={v}" for k, v in sorted(labels.items())))
    return peers


PROMETHEUS = "app.kubernetes.io/name=prometheus,kubernetes.io/metadata.name=monitoring"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_gateway_reaches_the_router_and_only_the_router_reaches_vllm(
    overlay: str,
) -> None:
    objects = rendered(overlay)
    deny = find(objects, "NetworkPolicy", "default-deny")["spec"]
    assert deny["podSelector"] == {}
    assert deny["policyTypes"] == ["Ingress", "Egress"]
    if overlay == "prod-inference-gateway":
        proxy = "gateway.networking.k8s.io/gateway-name=inference-gateway"
        assert ingress_peers(objects, "vllm") == {
            proxy,
            "app.kubernetes.io/component=endpoint-picker",
            PROMETHEUS,
        }
        proxy_ingress = find(objects, "NetworkPolicy", "inference-gateway")["spec"]["ingress"]
        gateway = {"podSelector": {"matchLabels": {"app.kubernetes.io/component": "gateway"}}}
        assert [rule["from"] for rule in proxy_ingress] == [[gateway]]
        return
    assert ingress_peers(objects, "router") == {"app.kubernetes.io/component=gateway", PROMETHEUS}
    assert ingress_peers(objects, "vllm") == {"app.kubernetes.io/component=router", PROMETHEUS}
    assert ingress_peers(objects, "redis") == {"app.kubernetes.io/component=gateway"}
    assert ingress_peers(objects, "gateway") == {
        "app.kubernetes.io/name=ingress-nginx,kubernetes.io/metadata.name=ingress-nginx",
        PROMETHEUS,
    }


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_the_router_discovers_the_vllm_pods_with_a_cache_aware_policy(overlay: str) -> None:
    objects = rendered(overlay)
    args = container(objects, "vllm-router")["args"]
    assert "--policy=cache_aware" in args
    assert "--service-discovery" in args
    vllm_labels = find(objects, "Deployment", "vllm")["spec"]["template"]["metadata"]["labels"]
    selector = args[args.index("--selector") + 1 : args.index("--service-discovery-port=8000")]
    assert dict(item.split("=", 1) for item in selector).items() <= vllm_labels.items()
    assert settings(objects)["SWITCHBOARD_UPSTREAM_URLS"] == "http://vllm-router:8000/v1"
    role = find(objects, "Role", "vllm-router")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}
    ]


def test_the_secret_placeholders_pass_the_schema_and_hold_no_value() -> None:
    declared = example_secrets()
    assert core_problems(declared) == []
    assert policy_problems(declared, declared=declared) == []
