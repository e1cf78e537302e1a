"""Invariants of the Kubernetes manifests that schemas cannot see, checked against the origin's
own source (origin/src) rather than a copy of its facts:

  probes      every HTTP probe points at a route the container's command serves (routes read
              from the routers in origin/src/http and the worker's in origin/src/main.rs), on a
              port the container has; origins have readiness and liveness, on different routes
  grace       an origin's terminationGracePeriodSeconds exceeds preStop sleep + CONFAB_DRAIN_SECS
              + CONFAB_SHUTDOWN_TIMEOUT_SECS (values as the container gets them: env, envFrom,
              else the default in config.rs), and it has a preStop hook
  selectors   Service, PodDisruptionBudget, NetworkPolicy, ServiceMonitor and topology-spread
              selectors select exactly the pods they are meant for; a Deployment's selector
              matches its own pods; the HPA targets an existing Deployment that sets no replicas;
              Ingress and HTTPRoute backends are existing Service ports
  security    every container runs non-root, read-only root filesystem, no privilege escalation,
              all capabilities dropped, seccomp RuntimeDefault; the data directory is writable
  rollout     every Deployment rolls with maxUnavailable 0
  settings    every CONFAB_* variable given to a container is a setting of the command it runs
              (clap `env = "..."` in origin/src, following `#[command(flatten)]`), every CONFAB_*
              anywhere in the output is a setting, CONFAB_*_FILE paths are mounted, secret
              references are keys of secrets.template.yaml, the public URL's host is the
              Ingress's / HTTPRoute's, and a scaled-out origin has a shared bucket
  metrics     every confab_* metric named in deploy/kubernetes (comments included) is one the
              origin emits (origin/src)

`--self-test` breaks the example render in memory, one way per check, and fails unless each
break is caught by the check meant to catch it.
Usage: invariants.py --repo ROOT [--self-test RENDER] RENDER...
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


# ---------------------------------------------------------------------------------------------
# Facts read from the origin's source.


@dataclass
class Setting:
    env: str
    default: str | None


@dataclass
class Source:
    """What the binary actually offers, read from origin/src."""

    # subcommand (as typed: serve, worker, migrate) → {CONFAB_* name: Setting}
    settings: dict[str, dict[str, Setting]]
    # subcommand → routes it serves over HTTP (axum paths, `{param}` allowed)
    routes: dict[str, set[str]]
    metrics: set[str]
    # ENV of the runtime image (Dockerfile), the layer under the manifests' env
    image_env: dict[str, str] = field(default_factory=dict)

    def all_settings(self) -> set[str]:
        return {name for s in self.settings.values() for name in s}


def _structs(src: Path) -> dict[str, tuple[dict[str, Setting], list[str]]]:
    """Every `pub struct` with clap attributes: its env settings and the structs it flattens."""
    out = {}
    for path in src.rglob("*.rs"):
        text = path.read_text()
        for m in re.finditer(r"pub struct (\w+) \{\n(.*?)\n\}", text, re.S):
            name, body = m.group(1), m.group(2)
            settings: dict[str, Setting] = {}
            flattens = []
            # A field: its attributes, then `pub name: Type,`.
            for f in re.finditer(r"((?:\s*(?:///[^\n]*|#\[[^\]]*(?:\][^\]\n]*)*\]))*)\s*pub \w+: ([^,\n]+),", body):
                attrs, ty = f.group(1), f.group(2)
                env = re.search(r'env\s*=\s*"(CONFAB_[A-Z0-9_]+)"', attrs)
                if env:
                    default = re.search(r'default_value(?:_t)?\s*=\s*("([^"]*)"|[^,\)\]]+)', attrs)
                    value = None
                    if default:
                        value = default.group(2) if default.group(2) is not None else default.group(1).strip()
                    settings[env.group(1)] = Setting(env.group(1), value)
                if "command(flatten)" in attrs:
                    flattens.append(ty.strip().split("::")[-1])
            if settings or flattens:
                out[name] = (settings, flattens)
    return out


def _closure(structs, name: str) -> dict[str, Setting]:
    settings, flattens = structs[name]
    merged = dict(settings)
    for inner in flattens:
        merged.update(_closure(structs, inner))
    return merged


def _block(text: str, start: int) -> str:
    """The text from `start` to the end of the statement (`;`) at its own nesting depth."""
    depth = 0
    for i in range(start, len(text)):
        c = text[i]
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth < 0:
                return text[start:i]
        elif c == ";" and depth == 0:
            return text[start:i]
    return text[start:]


def _routes_in(text: str) -> set[str]:
    return set(re.findall(r'\.route\(\s*"([^"]+)"', text))


def read_source(repo: Path) -> Source:
    src = repo / "origin" / "src"
    structs = _structs(src)
    main = (src / "main.rs").read_text()
    commands = re.search(r"enum Command \{(.*?)\n\}", main, re.S).group(1)
    settings = {}
    for variant, struct in re.findall(r"^\s*(\w+)\(Box<(\w+)>\)", commands, re.M):
        settings[variant.lower()] = _closure(structs, struct)

    # The origin's router: http/mod.rs merges one router per area; areas merged into a router
    # that is then nested under a prefix get that prefix.
    http = src / "http"
    mod = (http / "mod.rs").read_text()
    area_routes = {p.stem: _routes_in(p.read_text()) for p in http.glob("*.rs") if p.stem != "mod"}
    serve: set[str] = set()
    nests = dict(re.findall(r'\.nest\(\s*"([^"]+)"\s*,\s*(\w+)\s*\)', mod))
    prefix_of_var = {var: prefix for prefix, var in nests.items()}
    fn = mod[mod.index("pub fn router(") :]
    for m in re.finditer(r"let (?:mut )?(\w+)\s*=", fn):
        var = m.group(1)
        stmt = _block(fn, m.end())
        prefix = prefix_of_var.get(var, "")
        for area in re.findall(r"(\w+)::router\(\)", stmt):
            serve |= {prefix + r for r in area_routes.get(area, set())}
        serve |= {prefix + r for r in _routes_in(stmt)}
    # Later chained calls on the app (`app = app.route(...)`).
    for m in re.finditer(r"\n\s*app = ", fn):
        serve |= _routes_in(_block(fn, m.end()))
    worker_arm = main[main.index("Command::Worker") :]
    worker_arm = worker_arm[: worker_arm.index("Command::Keygen")]
    routes = {"serve": serve, "worker": _routes_in(worker_arm), "migrate": set()}

    metrics = set()
    for path in src.rglob("*.rs"):
        metrics |= set(re.findall(r'"(confab_[a-z0-9_]+)"', path.read_text()))

    image_env: dict[str, str] = {}
    dockerfile = (repo / "Dockerfile").read_text()
    last_stage = dockerfile[dockerfile.rindex("\nFROM ") :]
    for m in re.finditer(r"^ENV\s+((?:.*\\\n)*.*)$", last_stage, re.M):
        for k, v in re.findall(r"(\w+)=(\S+)", m.group(1).replace("\\\n", " ")):
            image_env[k] = v
    return Source(settings, routes, metrics, image_env)


# ---------------------------------------------------------------------------------------------
# Reading the manifests.


def load(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def pod_spec(doc: dict) -> dict | None:
    if doc.get("kind") in WORKLOAD_KINDS:
        return doc["spec"]["template"]["spec"]
    return None


def pod_labels(doc: dict) -> dict:
    return doc["spec"]["template"].get("metadata", {}).get("labels", {}) or {}


def name(doc: dict) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def matches(selector: dict | None, labels: dict) -> bool:
    """A LabelSelector (matchLabels + matchExpressions) against a label set."""
    if selector is None:
        return False
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def containers(spec: dict) -> list[dict]:
    return list(spec.get("initContainers") or []) + list(spec.get("containers") or [])


def command_of(container: dict) -> str | None:
    args = list(container.get("command") or []) + list(container.get("args") or [])
    args = [a for a in args if a not in ("confab", "/usr/local/bin/confab")]
    return args[0] if args else None


def route_matches(route: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(route))
    return re.fullmatch(pattern, path) is not None


class Env:
    """The CONFAB_* environment of one container, as Kubernetes assembles it."""

    def __init__(self, docs: list[dict], container: dict, source: Source, render_has_configmaps: bool):
        self.given: dict[str, str] = {}  # what the manifests give, name → where from
        self.values: dict[str, str | None] = dict(source.image_env)
        self.missing_refs: list[str] = []
        configmaps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
        for ref in container.get("envFrom") or []:
            if "configMapRef" in ref:
                cm = configmaps.get(ref["configMapRef"]["name"])
                if cm is None:
                    if render_has_configmaps or not ref["configMapRef"].get("optional"):
                        self.missing_refs.append(f"ConfigMap {ref['configMapRef']['name']}")
                    continue
                for k, v in (cm.get("data") or {}).items():
                    self.given[k] = f"ConfigMap {cm['metadata']['name']}"
                    self.values[k] = v
        for e in container.get("env") or []:
            self.given[e["name"]] = "env"
            self.values[e["name"]] = e.get("value")  # None: from a Secret or a field

    def value(self, setting: str, command_settings: dict[str, Setting]) -> str | None:
        if setting in self.values:
            return self.values[setting]
        s = command_settings.get(setting)
        return s.default if s else None


# ---------------------------------------------------------------------------------------------
# The checks. Each returns a list of failure messages.


def check_probes(docs, source: Source) -> list[str]:
    out = []
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for c in containers(spec):
            cmd = command_of(c)
            served = source.routes.get(cmd, set())
            ports = {p.get("name") for p in c.get("ports") or []} | {p["containerPort"] for p in c.get("ports") or []}
            paths = {}
            for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
                probe = c.get(kind)
                if not probe or "httpGet" not in probe:
                    continue
                path = probe["httpGet"].get("path", "/").split("?")[0]
                paths[kind] = path
                if not any(route_matches(r, path) for r in served):
                    out.append(f"{name(doc)} {c['name']}: {kind} GET {path}, which `confab {cmd}` does not serve (outside /api it serves {sorted(r for r in served if not r.startswith('/api/'))})")
                if probe["httpGet"].get("port") not in ports:
                    out.append(f"{name(doc)} {c['name']}: {kind} port {probe['httpGet'].get('port')!r} is not a port of the container")
            if cmd == "serve":
                for kind in ("readinessProbe", "livenessProbe"):
                    if kind not in paths:
                        out.append(f"{name(doc)} {c['name']}: an origin needs an HTTP {kind}")
                if paths.get("livenessProbe") and paths.get("livenessProbe") == paths.get("readinessProbe"):
                    out.append(f"{name(doc)} {c['name']}: liveness and readiness both on {paths['livenessProbe']}: a database outage would restart every origin")
    return out


def _prestop_seconds(c: dict) -> int | None:
    pre = (c.get("lifecycle") or {}).get("preStop")
    if not pre:
        return None
    if "sleep" in pre:
        return int(pre["sleep"]["seconds"])
    cmd = (pre.get("exec") or {}).get("command") or []
    m = re.search(r"\bsleep\s+(\d+)", " ".join(cmd))
    return int(m.group(1)) if m else 0


def check_grace(docs, source: Source) -> list[str]:
    out = []
    has_cm = any(d["kind"] == "ConfigMap" for d in docs)
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        grace = spec.get("terminationGracePeriodSeconds", 30)
        for c in spec.get("containers") or []:
            if command_of(c) != "serve":
                continue
            env = Env(docs, c, source, has_cm)
            settings = source.settings["serve"]
            drain = int((env.value("CONFAB_DRAIN_SECS", settings) or "0").replace("_", ""))
            shutdown = int((env.value("CONFAB_SHUTDOWN_TIMEOUT_SECS", settings) or "0").replace("_", ""))
            pre = _prestop_seconds(c)
            if pre is None:
                out.append(f"{name(doc)} {c['name']}: no preStop hook (the pod must leave the endpoints before the origin closes its WebSockets)")
                pre = 0
            if drain == 0:
                out.append(f"{name(doc)} {c['name']}: CONFAB_DRAIN_SECS is 0: /readyz never fails before WebSockets are closed")
            if not grace > pre + drain + shutdown:
                out.append(
                    f"{name(doc)}: terminationGracePeriodSeconds {grace} does not exceed preStop {pre} + "
                    f"CONFAB_DRAIN_SECS {drain} + CONFAB_SHUTDOWN_TIMEOUT_SECS {shutdown} = {pre + drain + shutdown}"
                )
    return out


def check_selectors(docs, source: Source) -> list[str]:
    out = []
    workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}

    def selected(selector) -> list[dict]:
        return [w for w in workloads if matches(selector, pod_labels(w))]

    for w in workloads:
        if w["kind"] != "Job" and not matches(w["spec"].get("selector"), pod_labels(w)):
            out.append(f"{name(w)}: its selector does not match its own pod labels")
        for t in w["spec"]["template"]["spec"].get("topologySpreadConstraints") or []:
            if not matches(t.get("labelSelector"), pod_labels(w)):
                out.append(f"{name(w)}: a topology spread constraint ({t['topologyKey']}) does not select its own pods")
    for d in docs:
        kind = d["kind"]
        if kind == "Service":
            sel = d["spec"].get("selector")
            hits = selected({"matchLabels": sel}) if sel else []
            if len(hits) != 1:
                out.append(f"{name(d)}: selector {sel} selects the pods of {[name(h) for h in hits]}, not of exactly one workload")
            for hit in hits:
                ports = {p.get("name") for c in hit["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
                numbers = {p["containerPort"] for c in hit["spec"]["template"]["spec"]["containers"] for p in c.get("ports") or []}
                for p in d["spec"].get("ports") or []:
                    target = p.get("targetPort", p["port"])
                    if target not in ports and target not in numbers:
                        out.append(f"{name(d)}: targetPort {target!r} is not a port of {name(hit)}")
        elif kind == "PodDisruptionBudget":
            hits = selected(d["spec"].get("selector"))
            if len(hits) != 1:
                out.append(f"{name(d)}: selects the pods of {[name(h) for h in hits]}, not of exactly one workload")
        elif kind == "NetworkPolicy":
            if not selected(d["spec"].get("podSelector")):
                out.append(f"{name(d)}: its podSelector selects no Confab pods")
        elif kind == "HorizontalPodAutoscaler":
            ref = d["spec"]["scaleTargetRef"]
            target = [w for w in workloads if w["kind"] == ref["kind"] and w["metadata"]["name"] == ref["name"] and w["apiVersion"] == ref.get("apiVersion")]
            if not target:
                out.append(f"{name(d)}: scaleTargetRef {ref} names no workload here")
            for t in target:
                if "replicas" in t["spec"]:
                    out.append(f"{name(t)}: sets replicas although {name(d)} owns the count (every apply would reset it)")
        elif kind == "ServiceMonitor":
            hits = [s for s in services.values() if matches(d["spec"].get("selector"), s["metadata"].get("labels", {}))]
            if len(hits) != 1:
                out.append(f"{name(d)}: selects Services {[name(h) for h in hits]}, not exactly one")
            for svc in hits:
                port_names = {p.get("name") for p in svc["spec"].get("ports") or []}
                pods = selected({"matchLabels": svc["spec"].get("selector") or {}})
                for ep in d["spec"].get("endpoints") or []:
                    if ep.get("port") not in port_names:
                        out.append(f"{name(d)}: endpoint port {ep.get('port')!r} is not a port of {name(svc)}")
                    for pod in pods:
                        for c in pod["spec"]["template"]["spec"]["containers"]:
                            served = source.routes.get(command_of(c), set())
                            if not any(route_matches(r, ep.get("path", "/metrics")) for r in served):
                                out.append(f"{name(d)}: scrapes {ep.get('path', '/metrics')}, which `confab {command_of(c)}` does not serve")
        elif kind == "Ingress":
            for rule in d["spec"].get("rules") or []:
                for p in (rule.get("http") or {}).get("paths") or []:
                    svc = p["backend"]["service"]
                    out += _backend(d, services, svc["name"], svc["port"].get("name") or svc["port"].get("number"))
        elif kind == "HTTPRoute":
            for rule in d["spec"].get("rules") or []:
                for b in rule.get("backendRefs") or []:
                    out += _backend(d, services, b["name"], b.get("port"))
    return out


def _backend(doc, services, svc_name, port) -> list[str]:
    svc = services.get(svc_name)
    if svc is None:
        return [f"{name(doc)}: backend Service {svc_name} does not exist"]
    if port not in {p.get("name") for p in svc["spec"]["ports"]} | {p["port"] for p in svc["spec"]["ports"]}:
        return [f"{name(doc)}: backend port {port!r} is not a port of Service {svc_name}"]
    return []


def _effective(container: dict, pod: dict, key: str):
    csc = container.get("securityContext") or {}
    return csc[key] if key in csc else (pod.get("securityContext") or {}).get(key)


def check_security(docs, source: Source) -> list[str]:
    out = []
    has_cm = any(d["kind"] == "ConfigMap" for d in docs)
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for c in containers(spec):
            csc = c.get("securityContext") or {}
            where = f"{name(doc)} {c['name']}"
            if _effective(c, spec, "runAsNonRoot") is not True:
                out.append(f"{where}: runAsNonRoot is not true")
            if _effective(c, spec, "runAsUser") == 0:
                out.append(f"{where}: runs as uid 0")
            if csc.get("readOnlyRootFilesystem") is not True:
                out.append(f"{where}: the root filesystem is not read-only")
            if csc.get("allowPrivilegeEscalation") is not False:
                out.append(f"{where}: allowPrivilegeEscalation is not false")
            if csc.get("privileged"):
                out.append(f"{where}: privileged")
            caps = csc.get("capabilities") or {}
            if "ALL" not in (caps.get("drop") or []) or caps.get("add"):
                out.append(f"{where}: capabilities are not all dropped ({caps})")
            seccomp = (_effective(c, spec, "seccompProfile") or {}).get("type")
            if seccomp not in ("RuntimeDefault", "Localhost"):
                out.append(f"{where}: seccomp profile is {seccomp!r}, not RuntimeDefault")
            # With a read-only root, the data directory must be a writable volume.
            cmd = command_of(c)
            if cmd in ("serve", "migrate"):
                env = Env(docs, c, source, has_cm)
                data_dir = env.value("CONFAB_DATA_DIR", source.settings[cmd])
                if not _writable(spec, c, data_dir):
                    out.append(f"{where}: CONFAB_DATA_DIR {data_dir} is not on a writable volume")
    return out


def _mount_for(container: dict, path: str | None) -> dict | None:
    if not path or not path.startswith("/"):
        return None
    best = None
    for m in container.get("volumeMounts") or []:
        mp = m["mountPath"].rstrip("/")
        if path == mp or path.startswith(mp + "/"):
            if best is None or len(mp) > len(best["mountPath"]):
                best = m
    return best


def _writable(spec: dict, container: dict, path: str | None) -> bool:
    m = _mount_for(container, path)
    if m is None or m.get("readOnly"):
        return False
    volume = next((v for v in spec.get("volumes") or [] if v["name"] == m["name"]), {})
    return "emptyDir" in volume or "persistentVolumeClaim" in volume or "ephemeral" in volume


def check_rollout(docs, source: Source) -> list[str]:
    out = []
    for d in docs:
        if d["kind"] != "Deployment":
            continue
        strategy = d["spec"].get("strategy") or {}
        unavailable = (strategy.get("rollingUpdate") or {}).get("maxUnavailable")
        if strategy.get("type", "RollingUpdate") != "RollingUpdate" or unavailable not in (0, "0", "0%"):
            out.append(f"{name(d)}: maxUnavailable is {unavailable!r} (the default is 25%), not 0")
    return out


def check_settings(docs, source: Source, secret_keys: dict[str, set[str]] | None) -> list[str]:
    out = []
    everything = source.all_settings()
    has_cm = any(d["kind"] == "ConfigMap" for d in docs)
    for token in sorted(set(re.findall(r"\bCONFAB_[A-Z0-9_]+", yaml.safe_dump_all(docs)))):
        if token not in everything:
            out.append(f"{token} appears in the manifests but is no setting of any confab command")
    public_hosts = set()
    for doc in docs:
        spec = pod_spec(doc)
        if spec is None:
            continue
        for c in containers(spec):
            where = f"{name(doc)} {c['name']}"
            cmd = command_of(c)
            if cmd not in source.settings:
                out.append(f"{where}: runs `confab {cmd}`, which is no confab command ({sorted(source.settings)})")
                continue
            settings = source.settings[cmd]
            env = Env(docs, c, source, has_cm)
            out += [f"{where}: envFrom names a missing {r}" for r in env.missing_refs]
            for var, origin in sorted(env.given.items()):
                if var.startswith("CONFAB_") and var not in settings:
                    out.append(f"{where}: {var} (from {origin}) is not a setting of `confab {cmd}`")
                if var.startswith("CONFAB_") and var.endswith("_FILE"):
                    path = env.values.get(var)
                    if _mount_for(c, path) is None:
                        out.append(f"{where}: {var}={path} is on no mounted volume")
            for e in c.get("env") or []:
                ref = (e.get("valueFrom") or {}).get("secretKeyRef")
                if ref and secret_keys is not None and ref["key"] not in secret_keys.get(ref["name"], set()):
                    out.append(f"{where}: {e['name']} reads Secret {ref['name']} key {ref['key']}, which secrets.template.yaml does not have")
            for v in spec.get("volumes") or []:
                sec = v.get("secret")
                if sec and secret_keys is not None:
                    for item in sec.get("items") or []:
                        if item["key"] not in secret_keys.get(sec["secretName"], set()):
                            out.append(f"{where}: volume {v['name']} reads Secret {sec['secretName']} key {item['key']}, which secrets.template.yaml does not have")
            if cmd == "serve":
                url = env.value("CONFAB_PUBLIC_URL", settings)
                m = re.match(r"(https?)://([^/:]+)", url or "")
                if not m:
                    out.append(f"{where}: CONFAB_PUBLIC_URL is {url!r}: browsers' WebSockets would fail the Origin check")
                else:
                    public_hosts.add(m.group(2))
                    if m.group(1) != "https":
                        out.append(f"{where}: CONFAB_PUBLIC_URL {url} is not https (session cookies would not be Secure)")
                if "CONFAB_REDIS_URL" in env.given and not env.value("CONFAB_S3_BUCKET", settings):
                    out.append(f"{where}: several origins (Redis broker) but no CONFAB_S3_BUCKET: files would stay on the pod that stored them")
    for d in docs:
        hosts = []
        if d["kind"] == "Ingress":
            hosts = [r.get("host") for r in d["spec"].get("rules") or []]
        elif d["kind"] == "HTTPRoute":
            hosts = d["spec"].get("hostnames") or []
        for h in hosts:
            if public_hosts and h not in public_hosts:
                out.append(f"{name(d)}: host {h} is not CONFAB_PUBLIC_URL's ({sorted(public_hosts)}): WebSockets would fail the Origin check")
    return out


def check_metrics(raw_texts: dict[str, str], source: Source) -> list[str]:
    out = []
    for path, text in raw_texts.items():
        for metric in sorted(set(re.findall(r"\bconfab_[a-z0-9_]+", text))):
            base = re.sub(r"_(bucket|sum|count)$", "", metric)
            if metric not in source.metrics and base not in source.metrics:
                out.append(f"{path}: names the metric {metric}, which the origin does not emit")
    return out


CHECKS = ["probes", "grace", "selectors", "security", "rollout", "settings"]


def run_checks(docs, source, secret_keys) -> dict[str, list[str]]:
    return {
        "probes": check_probes(docs, source),
        "grace": check_grace(docs, source),
        "selectors": check_selectors(docs, source),
        "security": check_security(docs, source),
        "rollout": check_rollout(docs, source),
        "settings": check_settings(docs, source, secret_keys),
    }


# ---------------------------------------------------------------------------------------------
# Self-test: each way of breaking the example must be caught by the check meant for it.


def _find(docs, kind, name_):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name_)


def _container(docs, kind, name_):
    return _find(docs, kind, name_)["spec"]["template"]["spec"]["containers"][0]


def _configmap(docs):
    return next(d for d in docs if d["kind"] == "ConfigMap")


def _set_env(c, var, value):
    c.setdefault("env", []).append({"name": var, "value": value})


BREAKS = [
    ("probes", "readiness probe on a route the origin does not serve",
     lambda d, s: _container(d, "Deployment", "confab-origin")["readinessProbe"]["httpGet"].update(path="/ready")),
    ("probes", "the origin stops serving /readyz (source changed, manifests not)",
     lambda d, s: s.routes["serve"].discard("/readyz")),
    ("probes", "liveness on /readyz",
     lambda d, s: _container(d, "Deployment", "confab-origin")["livenessProbe"]["httpGet"].update(path="/readyz")),
    ("probes", "probe on a port the container does not have",
     lambda d, s: _container(d, "Deployment", "confab-origin")["livenessProbe"]["httpGet"].update(port="web")),
    ("grace", "grace period shorter than drain + shutdown",
     lambda d, s: _find(d, "Deployment", "confab-origin")["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=20)),
    ("grace", "drain raised in the ConfigMap past the grace period",
     lambda d, s: _configmap(d)["data"].update(CONFAB_DRAIN_SECS="40")),
    ("grace", "shutdown timeout raised by an env entry",
     lambda d, s: _set_env(_container(d, "Deployment", "confab-origin"), "CONFAB_SHUTDOWN_TIMEOUT_SECS", "60")),
    ("grace", "no preStop hook",
     lambda d, s: _container(d, "Deployment", "confab-origin").pop("lifecycle")),
    ("selectors", "PDB selector matching no pods",
     lambda d, s: _find(d, "PodDisruptionBudget", "confab-origin")["spec"]["selector"]["matchLabels"].update({"app.kubernetes.io/component": "web"})),
    ("selectors", "Service selector also matching the workers",
     lambda d, s: _find(d, "Service", "confab-origin")["spec"]["selector"].pop("app.kubernetes.io/component")),
    ("selectors", "Service targetPort the pods do not have",
     lambda d, s: _find(d, "Service", "confab-origin")["spec"]["ports"][0].update(targetPort="web")),
    ("selectors", "HPA targeting a Deployment that does not exist",
     lambda d, s: _find(d, "HorizontalPodAutoscaler", "confab-origin")["spec"]["scaleTargetRef"].update(name="confab")),
    ("selectors", "replicas set on the HPA's Deployment",
     lambda d, s: _find(d, "Deployment", "confab-origin")["spec"].update(replicas=3)),
    ("selectors", "pod labels no longer matching the Deployment's selector",
     lambda d, s: _find(d, "Deployment", "confab-worker")["spec"]["template"]["metadata"]["labels"].update({"app.kubernetes.io/component": "writer"})),
    ("selectors", "ServiceMonitor on a port the Service does not have",
     lambda d, s: _find(d, "ServiceMonitor", "confab-worker")["spec"]["endpoints"][0].update(port="http")),
    ("selectors", "Ingress backend on a Service that does not exist",
     lambda d, s: _find(d, "Ingress", "confab")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"].update(name="origin")),
    ("security", "a writable root filesystem",
     lambda d, s: _container(d, "Deployment", "confab-worker")["securityContext"].update(readOnlyRootFilesystem=False)),
    ("security", "runAsNonRoot removed from container and pod",
     lambda d, s: (_container(d, "Deployment", "confab-origin")["securityContext"].pop("runAsNonRoot"),
                   _find(d, "Deployment", "confab-origin")["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot"))),
    ("security", "privilege escalation allowed",
     lambda d, s: _container(d, "Deployment", "confab-origin")["securityContext"].update(allowPrivilegeEscalation=True)),
    ("security", "a capability added back",
     lambda d, s: _container(d, "Deployment", "confab-origin")["securityContext"]["capabilities"].update(add=["NET_BIND_SERVICE"])),
    ("security", "seccomp Unconfined",
     lambda d, s: _container(d, "Deployment", "confab-origin")["securityContext"].update(seccompProfile={"type": "Unconfined"})),
    ("security", "the data directory moved off its emptyDir",
     lambda d, s: _configmap(d)["data"].update(CONFAB_DATA_DIR="/data")),
    ("rollout", "maxUnavailable 1",
     lambda d, s: _find(d, "Deployment", "confab-origin")["spec"]["strategy"]["rollingUpdate"].update(maxUnavailable=1)),
    ("rollout", "no strategy (default 25% unavailable)",
     lambda d, s: _find(d, "Deployment", "confab-worker")["spec"].pop("strategy")),
    ("settings", "an env variable that is no setting",
     lambda d, s: _set_env(_container(d, "Deployment", "confab-origin"), "CONFAB_DRAIN_SECONDS", "10")),
    ("settings", "a ConfigMap key that is no setting",
     lambda d, s: _configmap(d)["data"].update(CONFAB_MAX_CONNECTION="10")),
    ("settings", "a worker setting given to the origin",
     lambda d, s: _set_env(_container(d, "Deployment", "confab-origin"), "CONFAB_WORKER_BATCH", "64")),
    ("settings", "an origin setting given to the worker",
     lambda d, s: _set_env(_container(d, "Deployment", "confab-worker"), "CONFAB_DRAIN_SECS", "5")),
    ("settings", "the origin drops a setting the manifests use (source changed)",
     lambda d, s: s.settings["serve"].pop("CONFAB_TRUST_FORWARDED_FOR")),
    ("settings", "a key file on no mounted volume",
     lambda d, s: _container(d, "Deployment", "confab-origin")["volumeMounts"].pop(0)),
    ("settings", "a secret key the template does not have",
     lambda d, s: _container(d, "Deployment", "confab-worker")["env"][-1]["valueFrom"]["secretKeyRef"].update(key="redis")),
    ("settings", "an Ingress host other than the public URL's",
     lambda d, s: _find(d, "Ingress", "confab")["spec"]["rules"][0].update(host="chat.example.org")),
    ("settings", "no public URL",
     lambda d, s: _configmap(d)["data"].pop("CONFAB_PUBLIC_URL")),
]


def self_test(docs, source, secret_keys) -> int:
    clean = run_checks(docs, source, secret_keys)
    if any(clean.values()):
        print("FAIL self-test: the unbroken render does not pass; fix that first")
        return 1
    failures = 0
    for check, what, breaker in BREAKS:
        broken_docs, broken_source = copy.deepcopy(docs), copy.deepcopy(source)
        breaker(broken_docs, broken_source)
        result = run_checks(broken_docs, broken_source, secret_keys)
        if result[check]:
            print(f"  caught by {check}: {what}: {result[check][0]}")
        else:
            failures += 1
            print(f"FAIL self-test: {check} did not catch: {what}")
    # The metrics check, on text.
    fake = {"fake/hpa.yaml": "# metric name: confab_ws_conections"}
    if check_metrics(fake, source):
        print("  caught by metrics: a misspelt metric name in a comment")
    else:
        failures += 1
        print("FAIL self-test: metrics did not catch a misspelt metric name")
    print(f"self-test: {len(BREAKS) + 1 - failures} passed, {failures} failed")
    return failures


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", type=Path, required=True)
    ap.add_argument("--self-test", type=Path, help="a render to break in every way")
    ap.add_argument("renders", nargs="+", type=Path)
    args = ap.parse_args()

    source = read_source(args.repo)
    for cmd in ("serve", "worker", "migrate"):
        if not source.settings.get(cmd):
            print(f"FAIL reading origin/src: no settings found for `confab {cmd}`")
            return 1
    if not {"/healthz", "/readyz", "/metrics"} <= source.routes["serve"]:
        print(f"note: the origin serves {sorted(source.routes['serve'])}")
    template = args.repo / "deploy" / "kubernetes" / "secrets.template.yaml"
    secret_keys = {d["metadata"]["name"]: set((d.get("stringData") or {}) | (d.get("data") or {})) for d in load(template)}

    passed = failed = 0
    for render in args.renders:
        docs = load(render)
        for check, failures in run_checks(docs, source, secret_keys).items():
            if failures:
                failed += 1
                for f in failures:
                    print(f"FAIL {render.name} {check}: {f}")
            else:
                passed += 1
        print(f"checked {render.name}: {len(docs)} resources")
    raw = {str(p.relative_to(args.repo)): p.read_text() for p in sorted((args.repo / "deploy" / "kubernetes").rglob("*")) if p.is_file()}
    metric_failures = check_metrics(raw, source)
    for f in metric_failures:
        print(f"FAIL metrics: {f}")
    passed, failed = passed + (not metric_failures), failed + bool(metric_failures)
    print(f"invariants: {passed} passed, {failed} failed")

    if args.self_test:
        failed += self_test(load(args.self_test), source, secret_keys)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
