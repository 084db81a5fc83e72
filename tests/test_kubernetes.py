"""deploy/kubernetes/ against the Kubernetes schemas and against the service itself.

Offline: no cluster, no kustomize binary, no network. Each variant directory
has a kustomization.yaml with `resources` only (no patches, generators or
transformers, which this file refuses), so `kubectl apply -k DIR` renders
exactly the listed files as written; the tests render them the same way.
Every Kubernetes object is validated with kubernetes_validate (strict: an
unknown field fails) against the oldest Kubernetes version the README names
and the newest one kubernetes_validate ships. The PodMonitor (a Prometheus
Operator CRD, in no Kubernetes schema) is checked field by field here.
Then the manifests are checked against events_audit itself: every variable
is a setting and the environment resolves, the probes hit the health address
the ConfigMap sets, the credential paths are in the Secret's mount, the
shutdown fits the grace period, the durables fit the HA modes.

Each check is a function that raises AssertionError (or ConfigError); the
`test_check_catches` cases run them on broken copies of the manifests, so
none of them passes whatever the files say.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import latest_version, major_minor
from packaging.version import Version

from events_audit.cli import parse_args
from events_audit.config import ENV_PREFIX, OPTIONS, ConfigError, Settings, resolve
from events_audit.http import HttpServer, parse_listen_address

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "packaging" / "docker" / "Dockerfile.multistage"
SERVER_SOURCE = ROOT / "src" / "events_audit" / "server.py"
SECRET_EXAMPLE = K8S / "secret.example.yaml"
MONITORING = K8S / "monitoring"

# The oldest Kubernetes the README promises (StatefulSet.spec.serviceName is
# still required there, PDB unhealthyPodEvictionPolicy is GA) and the newest
# schemas installed (catches fields removed since).
OLDEST_KUBERNETES = "1.31"
KUBERNETES_VERSIONS = sorted({OLDEST_KUBERNETES, major_minor(latest_version())}, key=Version)

CONTAINER = "events-audit"
HEALTH_PORT_NAME = "health"
IMAGE_NAME, IMAGE_TAG = "events-audit", "static"  # packaging/docker/README.md
APP_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"

# Measured (2026-12-01, build of packaging/build_executable.sh): with the
# service running, TMPDIR held 51,728,384 bytes (PyInstaller's archive 32 MB,
# staticx's libraries 18 MB); removed at exit, left behind when every process
# of the container is SIGKILLed. /tmp must hold the running copy, the copy of
# a `kubectl exec ... /events-audit verify` and one left by a killed container.
UNPACKED_BYTES = 51_728_384
TMP_COPIES = 3
# README "Large events": peak RSS <= 64 MB at every event size up to 1 MiB.
PEAK_RSS_BYTES = 64_000_000
# README "Delivery": acks are flushed within 5 s when the server is gone.
ACK_FLUSH_SECONDS = 5.0

# What each variant is (directory -> expectations).
VARIANTS = {
    "single": {"kind": "Deployment", "replicas": (1, 1), "ha": "none", "output": "stdout"},
    "shared": {"kind": "Deployment", "replicas": (2, 8), "ha": "none", "output": "stdout"},
    "pinned": {"kind": "Deployment", "replicas": (2, 3), "ha": "pinned", "output": "stdout"},
    "file-log": {"kind": "StatefulSet", "replicas": (1, 3), "ha": "pinned", "output": "file"},
}
WORKLOAD_KINDS = ("Deployment", "StatefulSet")
KUSTOMIZATION_KEYS = {"apiVersion", "kind", "resources"}
# Pod Security Standards, "restricted": the volume types it allows.
RESTRICTED_VOLUME_TYPES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}
PATH_SETTINGS = (
    "audit_nats_creds",
    "audit_nats_nkey",
    "audit_nats_tls_ca",
    "audit_nats_tls_cert",
    "audit_nats_tls_key",
    "audit_digest_key",
)
# Fields of monitoring.coreos.com/v1 PodMonitor (prometheus-operator,
# pkg/apis/monitoring/v1/podmonitor_types.go): a typo fails here.
PODMONITOR_SPEC_KEYS = {
    "jobLabel",
    "podTargetLabels",
    "podMetricsEndpoints",
    "selector",
    "selectorMechanism",
    "namespaceSelector",
    "sampleLimit",
    "targetLimit",
    "scrapeProtocols",
    "fallbackScrapeProtocol",
    "labelLimit",
    "labelNameLengthLimit",
    "labelValueLengthLimit",
    "keepDroppedTargets",
    "attachMetadata",
    "scrapeClass",
    "bodySizeLimit",
    "nativeHistogramBucketLimit",
    "nativeHistogramMinBucketFactor",
    "scrapeClassicHistograms",
    "convertClassicHistogramsToNHCB",
}
PODMONITOR_ENDPOINT_KEYS = {
    "port",
    "portNumber",
    "targetPort",
    "path",
    "scheme",
    "params",
    "interval",
    "scrapeTimeout",
    "tlsConfig",
    "bearerTokenSecret",
    "honorLabels",
    "honorTimestamps",
    "trackTimestampsStaleness",
    "basicAuth",
    "oauth2",
    "authorization",
    "metricRelabelings",
    "relabelings",
    "proxyUrl",
    "noProxy",
    "proxyFromEnvironment",
    "proxyConnectHeader",
    "followRedirects",
    "enableHttp2",
    "filterRunning",
}
CRD_KINDS = {("monitoring.coreos.com/v1", "PodMonitor")}


# --------------------------------------------------------------------------
# Reading and rendering
# --------------------------------------------------------------------------


def documents(path: Path) -> list[dict]:
    docs = [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc is not None]
    for doc in docs:
        assert isinstance(doc, dict), f"{path}: a document is not a mapping"
    return docs


def yaml_files() -> list[Path]:
    return sorted(p for p in K8S.rglob("*") if p.suffix in (".yaml", ".yml"))


def check_kustomization(directory: Path, kustomization: dict) -> list[Path]:
    """The files a kustomization renders; only plain `resources` are allowed."""
    assert kustomization.get("apiVersion") == "kustomize.config.k8s.io/v1beta1", directory
    assert kustomization.get("kind") == "Kustomization", directory
    extra = set(kustomization) - KUSTOMIZATION_KEYS
    assert not extra, (
        f"{directory}/kustomization.yaml uses {sorted(extra)}: only `resources` is allowed, "
        "so that the tests render what kubectl apply -k applies"
    )
    files = []
    for entry in kustomization.get("resources") or []:
        assert isinstance(entry, str) and "://" not in entry, f"{directory}: remote {entry!r}"
        path = (directory / entry).resolve()
        assert path.is_relative_to(K8S), f"{directory}: {entry!r} is outside deploy/kubernetes"
        assert path.exists(), f"{directory}: {entry!r} does not exist"
        if path.is_dir():
            files += render_files(path)
        else:
            files.append(path)
    assert files, f"{directory}: renders nothing"
    return files


def render_files(directory: Path) -> list[Path]:
    [kustomization] = documents(directory / "kustomization.yaml")
    return check_kustomization(directory, kustomization)


def render(directory: Path) -> list[dict]:
    """What `kubectl apply -k directory` applies (kustomize keeps resource order)."""
    docs = [doc for path in render_files(directory) for doc in documents(path)]
    ids = [(doc.get("apiVersion"), doc.get("kind"), doc["metadata"]["name"]) for doc in docs]
    duplicates = {i for i in ids if ids.count(i) > 1}
    assert not duplicates, f"{directory}: kustomize refuses duplicate objects {duplicates}"
    return docs


def dockerfile_final_stage() -> list[str]:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    start = max(i for i, line in enumerate(lines) if line.upper().startswith("FROM "))
    return [line.strip() for line in lines[start:] if line.strip() and not line.startswith("#")]


def image_uid() -> int:
    users = [line.split()[1] for line in dockerfile_final_stage() if line.startswith("USER ")]
    return int(users[-1].split(":")[0])


def image_tmpdir() -> str:
    for line in dockerfile_final_stage():
        match = re.fullmatch(r"ENV TMPDIR=(\S+)", line)
        if match:
            return match.group(1)
    raise AssertionError(f"{DOCKERFILE}: no ENV TMPDIR in the final stage")


# --------------------------------------------------------------------------
# Kubernetes semantics the schemas do not cover
# --------------------------------------------------------------------------

_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")
_QUANTITY_SUFFIX = {
    None: 1,
    "m": 1e-3,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def quantity(value: str | int | float) -> float:
    """A Kubernetes resource quantity (100m, 64Mi, 1, 0.5) as a number."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _QUANTITY.match(str(value))
    assert match, f"not a resource quantity: {value!r}"
    return float(match.group(1)) * _QUANTITY_SUFFIX[match.group(2)]


def selects(selector: dict, labels: dict) -> bool:
    """A metav1.LabelSelector against a pod's labels (an empty one is refused)."""
    assert set(selector) <= {"matchLabels", "matchExpressions"}, selector
    assert selector.get("matchLabels") or selector.get("matchExpressions"), "empty selector"
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def percent_or_count(value: int | str, replicas: int) -> int:
    """An IntOrString of a PDB (rounded up, as the disruption controller does)."""
    if isinstance(value, str) and value.endswith("%"):
        return -(-int(value[:-1]) * replicas // 100)
    return int(value)


@dataclass
class Variant:
    """The rendered objects of one variant directory."""

    name: str
    docs: list[dict]

    def of_kind(self, kind: str) -> list[dict]:
        return [doc for doc in self.docs if doc.get("kind") == kind]

    @property
    def workload(self) -> dict:
        workloads = [doc for doc in self.docs if doc.get("kind") in WORKLOAD_KINDS]
        assert len(workloads) == 1, f"{self.name}: {len(workloads)} workloads, want 1"
        return workloads[0]

    @property
    def replicas(self) -> int:
        return self.workload["spec"].get("replicas", 1)

    @property
    def pod_labels(self) -> dict:
        return self.workload["spec"]["template"]["metadata"]["labels"]

    @property
    def pod_spec(self) -> dict:
        return self.workload["spec"]["template"]["spec"]

    @property
    def container(self) -> dict:
        containers = self.pod_spec["containers"]
        assert [c["name"] for c in containers] == [CONTAINER], f"{self.name}: one container"
        assert not self.pod_spec.get("initContainers"), f"{self.name}: no init containers"
        return containers[0]

    def volume(self, name: str) -> dict:
        for volume in self.pod_spec.get("volumes", []):
            if volume["name"] == name:
                return volume
        claims = self.workload["spec"].get("volumeClaimTemplates", [])
        for claim in claims:
            if claim["metadata"]["name"] == name:
                return {"name": name, "volumeClaimTemplate": claim}
        raise AssertionError(f"{self.name}: no volume {name!r}")

    def mount_at(self, directory: str) -> dict | None:
        for mount in self.container.get("volumeMounts", []):
            if PurePosixPath(mount["mountPath"]) == PurePosixPath(directory):
                return mount
        return None

    def environment(self) -> dict[str, str]:
        """The container's environment: envFrom ConfigMaps, then env."""
        env: dict[str, str] = {}
        configmaps = {doc["metadata"]["name"]: doc for doc in self.of_kind("ConfigMap")}
        for source in self.container.get("envFrom", []):
            assert set(source) == {"configMapRef"}, (
                f"{self.name}: envFrom {source}: settings come from a ConfigMap, without prefix "
                "(credentials are files of the Secret, not variables)"
            )
            name = source["configMapRef"]["name"]
            assert name in configmaps, f"{self.name}: envFrom names ConfigMap {name!r}, not here"
            env.update(configmaps[name].get("data") or {})
        for item in self.container.get("env", []):
            assert set(item) == {"name", "value"}, f"{self.name}: env {item}: plain values only"
            env[item["name"]] = item["value"]
        return env

    def cli_values(self) -> dict[str, str]:
        assert "command" not in self.container, f"{self.name}: the image's ENTRYPOINT runs"
        parsed = parse_args([str(arg) for arg in self.container.get("args", [])])
        assert isinstance(parsed, dict), f"{self.name}: args ask for {parsed}"
        return parsed

    def settings(self) -> Settings:
        return resolve(self.cli_values(), environ=self.environment())


def load_variants() -> dict[str, Variant]:
    return {name: Variant(name, render(K8S / name)) for name in VARIANTS}


# --------------------------------------------------------------------------
# Checks (each raises AssertionError or ConfigError)
# --------------------------------------------------------------------------


def schema_check(doc: dict, version: str) -> None:
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        raise AssertionError(
            f"{doc['kind']} {doc['metadata']['name']}: {where}: {exc.message}"
        ) from None


def check_shape(v: Variant) -> None:
    want = VARIANTS[v.name]
    assert v.workload["kind"] == want["kind"], f"{v.name}: a {want['kind']}"
    low, high = want["replicas"]
    assert low <= v.replicas <= high, f"{v.name}: replicas {v.replicas}, want {low}-{high}"
    env = v.environment()
    assert env.get(ENV_PREFIX + "AUDIT_HA") == want["ha"], f"{v.name}: AUDIT_HA={want['ha']}"
    settings = v.settings()
    assert settings.audit_ha == want["ha"]
    if want["ha"] == "pinned":
        assert settings.audit_engine != "python", f"{v.name}: pinned needs the fast engine"
    if v.name == "single":
        # never two writers, even during an update: the log stays in stream order
        strategy = v.workload["spec"].get("strategy", {}).get("type")
        assert strategy == "Recreate", f"{v.name}: strategy {strategy}, not Recreate"
    elif v.workload["kind"] == "Deployment":
        rolling = v.workload["spec"]["strategy"]["rollingUpdate"]
        assert rolling.get("maxUnavailable") == 0, f"{v.name}: a new pod is ready first"


def check_env_names(v: Variant) -> None:
    known = {option.env for option in OPTIONS}
    sources = [
        (f"ConfigMap {c['metadata']['name']}", c.get("data") or {}) for c in v.of_kind("ConfigMap")
    ]
    sources.append(
        ("container env", {e["name"]: e.get("value") for e in v.container.get("env", [])})
    )
    assert sources[0][1], f"{v.name}: the settings come from a ConfigMap"
    for where, data in sources:
        for key, value in data.items():
            assert key.startswith(ENV_PREFIX), f"{v.name} {where}: {key} is not {ENV_PREFIX}*"
            assert key in known, f"{v.name} {where}: {key} is no setting (config.OPTIONS)"
            assert isinstance(value, str) and value, f"{v.name} {where}: {key} empty or not text"


def check_settings(v: Variant) -> None:
    """What resolve() accepts and the service then refuses at start (cli, server)."""
    s = v.settings()  # ConfigError on a bad value
    assert s.audit == "nats", f"{v.name}: AUDIT_LISTNER_AUDIT=nats, or the service exits"
    assert s.audit_nats_addr.strip(), f"{v.name}: --audit=nats needs an address"
    assert not (s.audit_nats_creds and s.audit_nats_nkey), "creds and nkey exclude each other"
    assert bool(s.audit_nats_tls_cert) == bool(s.audit_nats_tls_key), "cert and key go together"
    if s.audit_digest or s.audit_digest_key:
        assert s.audit_digest, "--audit-digest-key needs --audit-digest"
        assert s.log_output not in ("stdout", "stderr"), "--audit-digest needs a log file"
        assert PurePosixPath(s.audit_digest) != PurePosixPath(s.log_output)
    assert not s.config, f"{v.name}: configured by variables only (no --config file)"


def check_health(v: Variant) -> None:
    host, port = parse_listen_address(v.settings().health_addr)
    assert host in (None, "0.0.0.0", "::"), (
        f"{v.name}: --health-addr host {host!r}: the kubelet probes the pod IP"
    )
    ports = {p.get("name"): p for p in v.container.get("ports", [])}
    assert HEALTH_PORT_NAME in ports, f"{v.name}: a container port named {HEALTH_PORT_NAME!r}"
    assert ports[HEALTH_PORT_NAME]["containerPort"] == port, (
        f"{v.name}: containerPort {ports[HEALTH_PORT_NAME]['containerPort']} != health port {port}"
    )
    assert ports[HEALTH_PORT_NAME].get("protocol", "TCP") == "TCP"
    numbers = {name: p["containerPort"] for name, p in ports.items()}
    for probe, path in (("livenessProbe", "/health"), ("readinessProbe", "/ready")):
        assert probe in v.container, f"{v.name}: no {probe}"
        get = v.container[probe].get("httpGet")
        assert get, f"{v.name}: {probe} is an HTTP GET"
        assert get.get("path") == path, f"{v.name}: {probe} path {get.get('path')!r} != {path}"
        assert get.get("scheme", "HTTP") == "HTTP" and "host" not in get, v.name
        target = numbers.get(get["port"]) if isinstance(get["port"], str) else get["port"]
        assert target == port, f"{v.name}: {probe} port {get['port']!r} is not {port}"


def check_secret_files(v: Variant, secret: dict) -> None:
    s = v.settings()
    paths = {name: getattr(s, name) for name in PATH_SETTINGS if getattr(s, name)}
    assert paths, f"{v.name}: the credentials/TLS settings name files of the Secret"
    volumes = [vol for vol in v.pod_spec.get("volumes", []) if "secret" in vol]
    assert len(volumes) == 1, f"{v.name}: one Secret volume"
    volume = volumes[0]["secret"]
    assert volume["secretName"] == secret["metadata"]["name"], f"{v.name}: the Secret's name"
    assert not volume.get("optional"), f"{v.name}: a missing Secret must stop the pod"
    mode = volume.get("defaultMode", 0o644)
    assert mode & 0o007 == 0 and mode & 0o040, f"{v.name}: defaultMode {mode:o}: group only"
    # the files belong to root and group fsGroup: the service reads them as that group
    fs_group = v.pod_spec.get("securityContext", {}).get("fsGroup")
    assert fs_group == image_uid(), f"{v.name}: fsGroup {fs_group}: the Secret's files unreadable"
    mounts = [m for m in v.container["volumeMounts"] if m["name"] == volumes[0]["name"]]
    assert len(mounts) == 1 and mounts[0].get("readOnly") is True, f"{v.name}: mounted read-only"
    mount_path = PurePosixPath(mounts[0]["mountPath"])
    keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
    if volume.get("items"):
        files = {item["path"]: item["key"] for item in volume["items"]}
    else:
        files = {key: key for key in keys}
    for name, path in paths.items():
        file = PurePosixPath(path)
        assert file.is_absolute() and file.is_relative_to(mount_path), (
            f"{v.name}: {name}={path!r} is not in the Secret's mount {mount_path}"
        )
        relative = str(file.relative_to(mount_path))
        assert relative in files and files[relative] in keys, (
            f"{v.name}: {name}={path!r}: the Secret has no such file (keys: {sorted(keys)})"
        )


def check_log_output(v: Variant) -> None:
    s = v.settings()
    if VARIANTS[v.name]["output"] == "stdout":
        assert s.log_output == "stdout", f"{v.name}: log lines to stdout, for the log collector"
        return
    assert v.workload["kind"] == "StatefulSet", f"{v.name}: a log file needs its own claim"
    claims = {c["metadata"]["name"] for c in v.workload["spec"].get("volumeClaimTemplates", [])}
    for name in ("log_output", "audit_digest"):
        path = getattr(s, name)
        if not path and name == "audit_digest":
            continue
        assert path.startswith("/"), f"{v.name}: {name} {path!r} is an absolute file path"
        mount = v.mount_at(str(PurePosixPath(path).parent))
        assert mount is not None, f"{v.name}: {name} {path!r}: its directory is no mount"
        assert mount["name"] in claims, f"{v.name}: {name} {path!r} is not on the claim"
        assert not mount.get("readOnly"), f"{v.name}: the claim is mounted writable"
    retention = v.workload["spec"].get("persistentVolumeClaimRetentionPolicy", {})
    assert retention.get("whenDeleted", "Retain") == "Retain", "the claims hold the record"
    assert retention.get("whenScaled", "Retain") == "Retain", "the claims hold the record"
    assert v.pod_spec["securityContext"].get("fsGroup") == image_uid(), "claim writable"


def check_tmp(v: Variant) -> None:
    tmpdir = image_tmpdir()
    assert "TMPDIR" not in v.environment(), f"{v.name}: TMPDIR is the image's"
    mount = v.mount_at(tmpdir)
    assert mount is not None, f"{v.name}: read-only root: {tmpdir} (TMPDIR) must be a volume"
    assert not mount.get("readOnly"), f"{v.name}: {tmpdir} is written"
    empty_dir = v.volume(mount["name"]).get("emptyDir")
    assert empty_dir is not None, f"{v.name}: {tmpdir} is an emptyDir"
    assert empty_dir.get("medium", "") != "Memory", (
        f"{v.name}: a tmpfs {tmpdir} counts ~50 MB per copy against the memory limit"
    )
    assert "sizeLimit" in empty_dir, f"{v.name}: {tmpdir} needs a sizeLimit"
    assert quantity(empty_dir["sizeLimit"]) >= TMP_COPIES * UNPACKED_BYTES, (
        f"{v.name}: sizeLimit {empty_dir['sizeLimit']} < {TMP_COPIES} unpacked copies"
    )
    requested = v.container["resources"].get("requests", {}).get("ephemeral-storage")
    assert requested and quantity(requested) >= UNPACKED_BYTES, f"{v.name}: ephemeral-storage"


def check_security(v: Variant) -> None:
    pod = v.pod_spec.get("securityContext", {})
    container = v.container.get("securityContext", {})

    def effective(key: str):
        return container.get(key, pod.get(key))

    assert effective("runAsNonRoot") is True, f"{v.name}: runAsNonRoot"
    assert effective("runAsUser") == image_uid(), f"{v.name}: runAsUser {image_uid()} (image)"
    assert effective("runAsGroup") == image_uid(), f"{v.name}: runAsGroup"
    seccomp = (effective("seccompProfile") or {}).get("type")
    assert seccomp == "RuntimeDefault", f"{v.name}: seccompProfile {seccomp}"
    assert container.get("readOnlyRootFilesystem") is True, f"{v.name}: readOnlyRootFilesystem"
    assert container.get("allowPrivilegeEscalation") is False, f"{v.name}: no escalation"
    assert not container.get("privileged"), v.name
    capabilities = container.get("capabilities", {})
    assert capabilities.get("drop") == ["ALL"], f"{v.name}: capabilities: drop ALL"
    assert not capabilities.get("add"), f"{v.name}: capabilities: add none"
    assert v.pod_spec.get("automountServiceAccountToken") is False, f"{v.name}: no API token"
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not v.pod_spec.get(key), f"{v.name}: {key}"
    for volume in v.pod_spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        assert kinds <= RESTRICTED_VOLUME_TYPES, f"{v.name}: volume {volume['name']}: {kinds}"


def check_resources(v: Variant) -> None:
    resources = v.container.get("resources", {})
    requests, limits = resources.get("requests", {}), resources.get("limits", {})
    assert quantity(requests.get("cpu", 0)) > 0, f"{v.name}: a CPU request"
    assert quantity(requests.get("memory", 0)) >= PEAK_RSS_BYTES, f"{v.name}: memory request"
    assert "memory" in limits, f"{v.name}: a memory limit"
    assert quantity(limits["memory"]) >= 2 * PEAK_RSS_BYTES, f"{v.name}: memory limit margin"
    assert quantity(limits["memory"]) >= quantity(requests["memory"])
    if "cpu" in limits:
        assert quantity(limits["cpu"]) >= 1, f"{v.name}: a CPU limit throttles pulls and acks"


def check_grace(v: Variant) -> None:
    s = v.settings()
    bound = s.audit_pull_timeout + s.log_shutdown_timeout + ACK_FLUSH_SECONDS
    grace = v.pod_spec.get("terminationGracePeriodSeconds", 30)
    assert grace >= 1.5 * bound, f"{v.name}: grace {grace}s, shutdown takes up to {bound}s"


def check_selectors(v: Variant) -> None:
    spec = v.workload["spec"]
    assert selects(spec["selector"], v.pod_labels), f"{v.name}: the selector misses its pods"
    assert v.pod_labels.get(APP_LABEL) == IMAGE_NAME, v.name
    assert v.pod_labels.get(INSTANCE_LABEL) == v.workload["metadata"]["name"], v.name
    if v.workload["kind"] == "StatefulSet":
        services = {doc["metadata"]["name"]: doc for doc in v.of_kind("Service")}
        service = services.get(spec.get("serviceName"))
        assert service, f"{v.name}: serviceName {spec.get('serviceName')!r} is not here"
        assert service["spec"].get("clusterIP") == "None", f"{v.name}: a headless Service"
        assert selects({"matchLabels": service["spec"]["selector"]}, v.pod_labels), v.name
        names = {p.get("name") for p in v.container.get("ports", [])}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names, f"{v.name}: Service targetPort {port}"
    else:
        assert not v.of_kind("Service"), f"{v.name}: no Service is needed"


def check_spread(v: Variant) -> None:
    if v.replicas < 2:
        return
    constraints = v.pod_spec.get("topologySpreadConstraints", [])
    hosts = [c for c in constraints if c["topologyKey"] == "kubernetes.io/hostname"]
    assert hosts, f"{v.name}: {v.replicas} replicas, spread over nodes"
    assert all(selects(c["labelSelector"], v.pod_labels) for c in hosts), v.name


def check_pdb(v: Variant) -> None:
    pdbs = v.of_kind("PodDisruptionBudget")
    assert len(pdbs) == 1, f"{v.name}: one PodDisruptionBudget"
    spec = pdbs[0]["spec"]
    assert selects(spec["selector"], v.pod_labels), f"{v.name}: the PDB selects no pod of it"
    assert spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow", f"{v.name}: drains go on"
    assert ("minAvailable" in spec) != ("maxUnavailable" in spec), v.name
    if "minAvailable" in spec:
        keep = percent_or_count(spec["minAvailable"], v.replicas)
    else:
        keep = v.replicas - percent_or_count(spec["maxUnavailable"], v.replicas)
    assert keep < v.replicas, f"{v.name}: the PDB keeps {keep} of {v.replicas}: drains hang"
    if v.replicas > 1:
        assert keep >= 1, f"{v.name}: {v.replicas} replicas, keep one through a drain"
    if VARIANTS[v.name]["ha"] == "pinned":
        assert spec.get("minAvailable") == 1, f"{v.name}: pinned: minAvailable 1"


def check_image(v: Variant) -> None:
    image = v.container["image"]
    name, _, digest = image.partition("@")
    repository, _, tag = name.rsplit("/", 1)[-1].partition(":")
    assert repository == IMAGE_NAME, f"{v.name}: image {image}"
    assert tag == IMAGE_TAG or digest.startswith("sha256:"), f"{v.name}: the static image"
    assert v.container.get("imagePullPolicy") in ("IfNotPresent", "Always"), v.name
    v.cli_values()


VARIANT_CHECKS: dict[str, Callable[[Variant], None]] = {
    "shape": check_shape,
    "env_names": check_env_names,
    "settings": check_settings,
    "health": check_health,
    "log_output": check_log_output,
    "tmp": check_tmp,
    "security": check_security,
    "resources": check_resources,
    "grace": check_grace,
    "selectors": check_selectors,
    "spread": check_spread,
    "pdb": check_pdb,
    "image": check_image,
}


def check_durables(variants: dict[str, Variant]) -> None:
    """A consumer's priority policy cannot be switched: one durable, one HA mode."""
    modes: dict[str, set[tuple[str, str]]] = {}
    for v in variants.values():
        s = v.settings()
        group = s.audit_ha_group if s.audit_ha == "pinned" else ""
        modes.setdefault(s.audit_durable_name, set()).add((s.audit_ha, group))
    for durable, used in modes.items():
        assert len(used) == 1, f"durable {durable!r} is used with {sorted(used)}"
    pinned = variants["pinned"].settings().audit_durable_name
    others = {variants[n].settings().audit_durable_name for n in variants if n != "pinned"}
    assert pinned not in others, f"the pinned variant's durable {pinned!r} is used by another"


def check_pdbs_disjoint(variants: dict[str, Variant]) -> None:
    """The eviction API refuses a pod that two PDBs select (variants can coexist)."""
    for v in variants.values():
        for other in variants.values():
            for pdb in other.of_kind("PodDisruptionBudget"):
                selected = selects(pdb["spec"]["selector"], v.pod_labels)
                assert selected == (other is v), (
                    f"PDB {pdb['metadata']['name']} {'selects' if selected else 'misses'} "
                    f"the pods of {v.name}"
                )


def check_podmonitor(monitor: dict, variants: dict[str, Variant]) -> None:
    assert (monitor.get("apiVersion"), monitor.get("kind")) in CRD_KINDS, monitor.get("kind")
    assert set(monitor) <= {"apiVersion", "kind", "metadata", "spec"}, set(monitor)
    spec = monitor["spec"]
    assert set(spec) <= PODMONITOR_SPEC_KEYS, f"PodMonitor spec: {set(spec) - PODMONITOR_SPEC_KEYS}"
    assert not spec.get("namespaceSelector"), "the PodMonitor watches its own namespace"
    endpoints = spec.get("podMetricsEndpoints")
    assert endpoints, "PodMonitor: podMetricsEndpoints"
    for v in variants.values():
        assert selects(spec["selector"], v.pod_labels), f"PodMonitor misses the pods of {v.name}"
        for label in spec.get("podTargetLabels", []):
            assert label in v.pod_labels, f"podTargetLabels {label!r}: not on {v.name}'s pods"
        _, health_port = parse_listen_address(v.settings().health_addr)
        ports = {p.get("name"): p["containerPort"] for p in v.container.get("ports", [])}
        for endpoint in endpoints:
            extra = set(endpoint) - PODMONITOR_ENDPOINT_KEYS
            assert not extra, f"PodMonitor endpoint: {extra}"
            assert endpoint.get("port") in ports, f"PodMonitor port: no such port on {v.name}"
            assert ports[endpoint["port"]] == health_port, "metrics are on the health port"
            assert endpoint.get("path") == "/metrics", f"PodMonitor path {endpoint.get('path')}"
            assert endpoint.get("scheme", "http") == "http"


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def variants() -> dict[str, Variant]:
    return load_variants()


@pytest.fixture(scope="module")
def secret() -> dict:
    [doc] = documents(SECRET_EXAMPLE)
    assert doc["kind"] == "Secret"
    return doc


def _schema_cases() -> list:
    cases = []
    for path in yaml_files():
        if path.name == "kustomization.yaml":
            continue
        for index, doc in enumerate(documents(path)):
            if (doc.get("apiVersion"), doc.get("kind")) in CRD_KINDS:
                continue
            for version in KUBERNETES_VERSIONS:
                rel = path.relative_to(K8S)
                cases.append(pytest.param(path, index, version, id=f"{rel}#{index}-k{version}"))
    return cases


def test_kubernetes_validate_has_the_versions() -> None:
    assert Version(latest_version()) >= Version(OLDEST_KUBERNETES), (
        f"kubernetes-validate {kubernetes_validate.__version__} has no {OLDEST_KUBERNETES} schemas"
    )


@pytest.mark.parametrize(("path", "index", "version"), _schema_cases())
def test_schema(path: Path, index: int, version: str) -> None:
    schema_check(documents(path)[index], version)


def test_every_file_is_rendered() -> None:
    """Each YAML file is a kustomization, rendered by one, or the Secret example,
    which no kustomization may apply (it would overwrite the real Secret)."""
    rendered = {p for name in VARIANTS for p in render_files(K8S / name)}
    rendered |= set(render_files(MONITORING))
    kustomizations = {p for p in yaml_files() if p.name == "kustomization.yaml"}
    assert kustomizations == {K8S / name / "kustomization.yaml" for name in VARIANTS} | {
        MONITORING / "kustomization.yaml"
    }
    assert SECRET_EXAMPLE not in rendered
    assert set(yaml_files()) - kustomizations - {SECRET_EXAMPLE} == rendered
    for directory in (*(K8S / name for name in VARIANTS), MONITORING):
        own = {p for p in directory.iterdir() if p.suffix in (".yaml", ".yml")}
        assert own - {directory / "kustomization.yaml"} <= set(render_files(directory)), (
            f"{directory}: a file that `apply -k` leaves out"
        )


def test_documents_are_objects() -> None:
    for path in yaml_files():
        for doc in documents(path):
            assert {"apiVersion", "kind"} <= set(doc), path
            if doc["kind"] != "Kustomization":
                assert doc["metadata"]["name"], path
                assert doc["metadata"].get("labels", {}).get(APP_LABEL) == IMAGE_NAME, path
                assert "namespace" not in doc["metadata"], f"{path}: kubectl -n chooses it"


@pytest.mark.parametrize("check", VARIANT_CHECKS)
@pytest.mark.parametrize("name", VARIANTS)
def test_variant(variants: dict[str, Variant], name: str, check: str) -> None:
    VARIANT_CHECKS[check](variants[name])


@pytest.mark.parametrize("name", VARIANTS)
def test_secret_files(variants: dict[str, Variant], secret: dict, name: str) -> None:
    check_secret_files(variants[name], secret)


def test_durables(variants: dict[str, Variant]) -> None:
    check_durables(variants)
    assert variants["pinned"].environment()[ENV_PREFIX + "AUDIT_HA"] == "pinned"


def test_pdbs_disjoint(variants: dict[str, Variant]) -> None:
    check_pdbs_disjoint(variants)


def test_same_image(variants: dict[str, Variant]) -> None:
    images = {v.container["image"] for v in variants.values()}
    assert len(images) == 1, f"one image for every variant: {images}"


def test_podmonitor(variants: dict[str, Variant]) -> None:
    [monitor] = render(MONITORING)
    check_podmonitor(monitor, variants)


def test_probe_paths_are_served() -> None:
    """/health, /ready and /metrics are routes of the health server."""
    assert "/health" in HttpServer(":0").routes
    source = SERVER_SOURCE.read_text(encoding="utf-8")
    for path in ("/ready", "/metrics"):
        assert re.search(rf'routes\["{re.escape(path)}"\]\s*=', source), path


# --------------------------------------------------------------------------
# The checks fail on broken manifests
# --------------------------------------------------------------------------


def _first(docs: list[dict], kind: str) -> dict:
    return next(doc for doc in docs if doc["kind"] == kind)


def _workload(docs: list[dict]) -> dict:
    return next(doc for doc in docs if doc["kind"] in WORKLOAD_KINDS)


def _container(docs: list[dict]) -> dict:
    return _workload(docs)["spec"]["template"]["spec"]["containers"][0]


def _pod(docs: list[dict]) -> dict:
    return _workload(docs)["spec"]["template"]["spec"]


def _config(docs: list[dict]) -> dict:
    return _first(docs, "ConfigMap")["data"]


def _tmp_volume(docs: list[dict]) -> dict:
    return next(vol for vol in _pod(docs)["volumes"] if vol["name"] == "tmp")


def _set(mapping: dict, key: str, value) -> None:
    mapping[key] = value


def _swap_budget(spec: dict) -> None:
    """minAvailable 1 -> maxUnavailable 1: the same with 2 replicas, not with 3."""
    del spec["minAvailable"]
    spec["maxUnavailable"] = 1


MUTATIONS: list = [
    ("health", "single", lambda d: _set(_config(d), "AUDIT_LISTNER_HEALTH_ADDR", ":3001")),
    (
        "health",
        "pinned",
        lambda d: _set(_config(d), "AUDIT_LISTNER_HEALTH_ADDR", "127.0.0.1:3000"),
    ),
    ("health", "shared", lambda d: _set(_container(d)["readinessProbe"]["httpGet"], "port", 8080)),
    (
        "health",
        "file-log",
        lambda d: _set(_container(d)["livenessProbe"]["httpGet"], "path", "/ready"),
    ),
    ("health", "single", lambda d: _set(_container(d)["ports"][0], "containerPort", 3001)),
    ("env_names", "single", lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_TOPICS", "x")),
    ("env_names", "shared", lambda d: _set(_config(d), "TZ", "UTC")),
    ("env_names", "pinned", lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_NATS_TLS_KEY", "")),
    ("settings", "single", lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_ACK_WAIT", "thirty")),
    ("settings", "shared", lambda d: _set(_config(d), "AUDIT_LISTNER_LOG_LEVEL", "verbose")),
    ("settings", "pinned", lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_HA_GROUP", "a.b")),
    ("settings", "single", lambda d: _config(d).pop("AUDIT_LISTNER_AUDIT")),
    (
        "settings",
        "single",
        lambda d: _set(
            _config(d), "AUDIT_LISTNER_AUDIT_NATS_TLS_CERT", "/etc/events-audit/nats/tls.crt"
        ),
    ),
    ("shape", "pinned", lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_HA", "none")),
    ("shape", "pinned", lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_ENGINE", "python")),
    ("shape", "single", lambda d: _set(_workload(d)["spec"], "replicas", 2)),
    (
        "shape",
        "single",
        lambda d: _set(_workload(d)["spec"], "strategy", {"type": "RollingUpdate"}),
    ),
    ("shape", "shared", lambda d: _set(_workload(d)["spec"], "replicas", 1)),
    ("log_output", "single", lambda d: _set(_config(d), "AUDIT_LISTNER_LOG_OUTPUT", "/tmp/a.log")),
    (
        "log_output",
        "file-log",
        lambda d: _set(_config(d), "AUDIT_LISTNER_LOG_OUTPUT", "/tmp/a.log"),
    ),
    ("log_output", "file-log", lambda d: _set(_config(d), "AUDIT_LISTNER_LOG_OUTPUT", "stdout")),
    (
        "log_output",
        "file-log",
        lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_DIGEST", "/etc/events-audit/nats/x"),
    ),
    ("tmp", "single", lambda d: _set(_container(d)["volumeMounts"][0], "mountPath", "/var/tmp")),
    ("tmp", "shared", lambda d: _set(_tmp_volume(d)["emptyDir"], "medium", "Memory")),
    ("tmp", "pinned", lambda d: _set(_tmp_volume(d)["emptyDir"], "sizeLimit", "64Mi")),
    ("tmp", "file-log", lambda d: _tmp_volume(d)["emptyDir"].pop("sizeLimit")),
    (
        "security",
        "single",
        lambda d: _set(_container(d)["securityContext"], "readOnlyRootFilesystem", False),
    ),
    ("security", "shared", lambda d: _container(d)["securityContext"].pop("capabilities")),
    ("security", "pinned", lambda d: _set(_container(d)["securityContext"], "runAsUser", 0)),
    (
        "security",
        "file-log",
        lambda d: _set(_container(d)["securityContext"], "allowPrivilegeEscalation", True),
    ),
    ("security", "single", lambda d: _set(_pod(d), "automountServiceAccountToken", True)),
    (
        "security",
        "shared",
        lambda d: _set(_container(d)["securityContext"], "seccompProfile", {"type": "Unconfined"}),
    ),
    ("resources", "single", lambda d: _container(d)["resources"]["limits"].pop("memory")),
    ("resources", "shared", lambda d: _set(_container(d)["resources"]["limits"], "cpu", "200m")),
    (
        "resources",
        "pinned",
        lambda d: _set(_container(d)["resources"]["requests"], "memory", "32Mi"),
    ),
    ("grace", "single", lambda d: _set(_pod(d), "terminationGracePeriodSeconds", 10)),
    ("grace", "pinned", lambda d: _set(_config(d), "AUDIT_LISTNER_LOG_SHUTDOWN_TIMEOUT", "30s")),
    (
        "selectors",
        "shared",
        lambda d: _set(_workload(d)["spec"]["selector"]["matchLabels"], INSTANCE_LABEL, "other"),
    ),
    ("selectors", "file-log", lambda d: _set(_workload(d)["spec"], "serviceName", "nope")),
    ("spread", "pinned", lambda d: _pod(d).pop("topologySpreadConstraints")),
    (
        "pdb",
        "pinned",
        lambda d: _set(
            _first(d, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"], INSTANCE_LABEL, "x"
        ),
    ),
    (
        "pdb",
        "single",
        lambda d: _set(_first(d, "PodDisruptionBudget")["spec"], "maxUnavailable", 0),
    ),
    ("pdb", "pinned", lambda d: _swap_budget(_first(d, "PodDisruptionBudget")["spec"])),
    (
        "pdb",
        "shared",
        lambda d: _set(_first(d, "PodDisruptionBudget")["spec"], "maxUnavailable", 3),
    ),
    (
        "image",
        "single",
        lambda d: _set(_container(d), "image", "registry.example.com/events-audit:binary"),
    ),
    ("image", "shared", lambda d: _set(_container(d), "command", ["/bin/sh"])),
]


@pytest.mark.parametrize(
    ("check", "name", "mutate"),
    [pytest.param(*m, id=f"{m[0]}-{m[1]}-{i}") for i, m in enumerate(MUTATIONS)],
)
def test_check_catches(variants: dict[str, Variant], check: str, name: str, mutate) -> None:
    broken = Variant(name, copy.deepcopy(variants[name].docs))
    mutate(broken.docs)
    with pytest.raises((AssertionError, ConfigError)):
        VARIANT_CHECKS[check](broken)


SECRET_MUTATIONS: list = [
    lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_NATS_CREDS", "/etc/nats/nats.creds"),
    lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_NATS_CREDS", "/etc/events-audit/nats/u.creds"),
    lambda d: _set(_config(d), "AUDIT_LISTNER_AUDIT_NATS_TLS_CA", "nats/ca.crt"),
    lambda d: _container(d)["volumeMounts"][1].pop("readOnly"),
    lambda d: _set(_pod(d)["volumes"][1]["secret"], "defaultMode", 0o444),
    lambda d: _set(_pod(d)["volumes"][1]["secret"], "secretName", "nats"),
    lambda d: _pod(d)["securityContext"].pop("fsGroup"),
]


@pytest.mark.parametrize("mutate", SECRET_MUTATIONS)
def test_secret_check_catches(variants: dict[str, Variant], secret: dict, mutate) -> None:
    broken = Variant("pinned", copy.deepcopy(variants["pinned"].docs))
    mutate(broken.docs)
    with pytest.raises(AssertionError):
        check_secret_files(broken, secret)


def test_cross_checks_catch(variants: dict[str, Variant], secret: dict) -> None:
    def broken(change: Callable[[dict[str, Variant]], None]) -> dict[str, Variant]:
        copied = {n: Variant(n, copy.deepcopy(v.docs)) for n, v in variants.items()}
        change(copied)
        return copied

    same_durable = broken(
        lambda vs: _set(
            _config(vs["pinned"].docs), "AUDIT_LISTNER_AUDIT_DURABLE_NAME", "events-audit-durable"
        )
    )
    with pytest.raises(AssertionError):
        check_durables(same_durable)
    pinned_file_on_none = broken(
        lambda vs: _set(
            _config(vs["single"].docs), "AUDIT_LISTNER_AUDIT_DURABLE_NAME", "events-audit-file"
        )
    )
    with pytest.raises(AssertionError):
        check_durables(pinned_file_on_none)
    overlapping = broken(
        lambda vs: _first(vs["shared"].docs, "PodDisruptionBudget")["spec"]["selector"][
            "matchLabels"
        ].pop(INSTANCE_LABEL)
    )
    with pytest.raises(AssertionError):
        check_pdbs_disjoint(overlapping)
    [monitor] = render(MONITORING)
    for change in (
        lambda m: _set(m["spec"]["podMetricsEndpoints"][0], "port", "metrics"),
        lambda m: _set(m["spec"]["podMetricsEndpoints"][0], "path", "/metric"),
        lambda m: _set(m["spec"]["selector"], "matchLabels", {APP_LABEL: "events-audits"}),
        lambda m: _set(m["spec"], "podMetricEndpoints", []),
        lambda m: _set(m, "apiVersion", "monitoring.coreos.com/v1alpha1"),
    ):
        wrong = copy.deepcopy(monitor)
        change(wrong)
        with pytest.raises(AssertionError):
            check_podmonitor(wrong, variants)


def test_schema_check_catches(variants: dict[str, Variant]) -> None:
    for change in (
        lambda d: _set(_container(d), "imagee", "x"),
        lambda d: _set(_workload(d)["spec"], "replicas", "2"),
        lambda d: _set(_container(d)["ports"][0], "containerPort", "3000"),
        lambda d: _set(_pod(d), "securityContext", {"readOnlyRootFilesystem": True}),
    ):
        docs = copy.deepcopy(variants["shared"].docs)
        change(docs)
        with pytest.raises(AssertionError):
            schema_check(_workload(docs), OLDEST_KUBERNETES)
    # a StatefulSet without serviceName is refused before Kubernetes 1.33
    docs = copy.deepcopy(variants["file-log"].docs)
    _workload(docs)["spec"].pop("serviceName")
    with pytest.raises(AssertionError):
        schema_check(_workload(docs), OLDEST_KUBERNETES)


def test_kustomization_check_catches() -> None:
    [good] = documents(K8S / "single" / "kustomization.yaml")
    for change in (
        lambda k: _set(k, "patches", [{"path": "x.yaml"}]),
        lambda k: _set(k, "namePrefix", "prod-"),
        lambda k: _set(k, "resources", [*k["resources"], "missing.yaml"]),
        lambda k: _set(k, "resources", [*k["resources"], "https://example.com/x.yaml"]),
        lambda k: _set(k, "resources", ["../../../pyproject.toml"]),
    ):
        wrong = copy.deepcopy(good)
        change(wrong)
        with pytest.raises(AssertionError):
            check_kustomization(K8S / "single", wrong)


def test_quantities_and_selectors() -> None:
    assert quantity("100m") == pytest.approx(0.1)
    assert quantity("64Mi") == 64 * 2**20
    assert quantity("1") == 1 and quantity(2) == 2 and quantity("0.5") == 0.5
    with pytest.raises(AssertionError):
        quantity("64MB")
    labels = {APP_LABEL: "events-audit", INSTANCE_LABEL: "events-audit-pinned"}
    assert selects({"matchLabels": {APP_LABEL: "events-audit"}}, labels)
    assert not selects({"matchLabels": {INSTANCE_LABEL: "events-audit-single"}}, labels)
    expr = {"key": INSTANCE_LABEL, "operator": "In", "values": ["events-audit-pinned"]}
    assert selects({"matchExpressions": [expr]}, labels)
    assert not selects({"matchExpressions": [{**expr, "operator": "NotIn"}]}, labels)
    with pytest.raises(AssertionError):
        selects({}, labels)
    assert percent_or_count("50%", 3) == 2 and percent_or_count(1, 3) == 1
