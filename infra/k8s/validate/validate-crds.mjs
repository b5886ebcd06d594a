// Validates custom resources against their projects' CRD schemas, offline: the validators that
// @kubernetes-models compiles from each project's published CRDs (KEDA, prometheus-operator,
// Gateway API). They check types, required fields and enums; unknown fields pass, as they do
// on a cluster that prunes them. Reads a JSON array of objects on stdin, writes a JSON array of
// {kind, name, errors} (errors: a list of messages, empty when valid). Run by
// tools/k8s_manifests.py.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Gateway } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/Gateway";
import { HTTPRoute } from "@kubernetes-models/gateway-api/gateway.networking.k8s.io/v1/HTTPRoute";

const MODELS = {
  "keda.sh/v1alpha1/ScaledObject": ScaledObject,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/ServiceMonitor": ServiceMonitor,
  "gateway.networking.k8s.io/v1/Gateway": Gateway,
  "gateway.networking.k8s.io/v1/HTTPRoute": HTTPRoute,
};

if (process.argv.includes("--kinds")) {
  process.stdout.write(JSON.stringify(Object.keys(MODELS)) + "\n");
  process.exit(0);
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const objects = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const results = objects.map((object) => {
  const key = `${object.apiVersion}/${object.kind}`;
  const name = object.metadata?.name ?? "";
  const Model = MODELS[key];
  if (!Model) return { kind: key, name, errors: [`no schema for ${key}`] };
  try {
    new Model(object).validate();
    return { kind: key, name, errors: [] };
  } catch (error) {
    return { kind: key, name, errors: [String(error.message ?? error)] };
  }
});
process.stdout.write(JSON.stringify(results) + "\n");
