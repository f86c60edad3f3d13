#!/usr/bin/env bash
# Validates the deployment files in deploy/ with what a developer machine or CI has: no Docker engine, no cluster.
#
#   - the systemd unit: `systemd-analyze verify` on a copy whose ExecStart points at a stand-in binary (verify rejects
#     a unit whose binary is missing, and /usr/local/bin/tripline is not installed here), then an offline
#     `systemd-analyze security` review with a ceiling on the exposure score;
#   - every YAML file parses; the Kubernetes manifests, the compose file and the Dockerfile provide what the server
#     needs (probe paths, port 4200, data and rules mounts, the tokens file, a non-root user) and agree with each other;
#   - kubectl kustomize, docker compose config, hadolint and shellcheck, each only when installed.
#
# Exits non-zero, naming every failed check, when anything is wrong.
set -euo pipefail

deploy="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
failures=0
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
pass() { printf 'ok:   %s\n' "$*"; }
skip() { printf 'skip: %s\n' "$*"; }

need() {
    if ! command -v "$1" > /dev/null 2>&1; then
        printf 'FAIL: %s is required (%s)\n' "$1" "$2" >&2
        exit 2
    fi
}
need python3 "apt-get install python3"
need systemd-analyze "apt-get install systemd"
if ! python3 -c 'import yaml' 2> /dev/null; then
    printf 'FAIL: python3 needs PyYAML (apt-get install python3-yaml, or pip install pyyaml)\n' >&2
    exit 2
fi

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# --- systemd -------------------------------------------------------------------------------------------------------

unit="$deploy/systemd/tripline.service"
binary=/usr/local/bin/tripline
# shellcheck disable=SC2016 # $MAINPID is systemd's to expand, not the shell's
for line in \
    "ExecStart=$binary serve --database /var/lib/tripline/tripline.sqlite --rules /etc/tripline/rules" \
    'ExecReload=/bin/kill -HUP $MAINPID' \
    'Restart=on-failure' \
    'KillSignal=SIGTERM' \
    'StateDirectory=tripline' \
    'ConfigurationDirectory=tripline' \
    'EnvironmentFile=-/etc/tripline/tripline.env' \
    'ProtectSystem=strict' \
    'NoNewPrivileges=yes'; do
    if grep -qxF -- "$line" "$unit"; then pass "unit has $line"; else fail "unit lacks the line: $line"; fi
done
if grep -qE '^TimeoutStopSec=[0-9]+' "$unit"; then pass "unit sets TimeoutStopSec"; else fail "unit lacks TimeoutStopSec="; fi

# A stand-in that exists and is executable, so that verify checks everything else about the unit.
mkdir -p "$scratch/bin"
printf '#!/bin/sh\nexit 0\n' > "$scratch/bin/tripline"
chmod 0755 "$scratch/bin/tripline"
sed "s#$binary#$scratch/bin/tripline#g" "$unit" > "$scratch/tripline.service"
if grep -q "^ExecStart=$scratch/bin/tripline " "$scratch/tripline.service"; then
    # verify exits 0 on unknown keys and unparsable values and only prints them, so any output is a failure.
    if output="$(systemd-analyze verify "$scratch/tripline.service" 2>&1)" && [ -z "$output" ]; then
        pass "systemd-analyze verify: no complaints"
    else
        fail "systemd-analyze verify on $unit:"$'\n'"$output"
    fi
    # Guards the check above against an environment where verify stays silent whatever the unit says.
    sed '/^\[Service\]/a NoSuchSetting=yes' "$scratch/tripline.service" > "$scratch/broken.service"
    if [ -n "$(systemd-analyze verify "$scratch/broken.service" 2>&1 || true)" ]; then
        pass "systemd-analyze verify reports a deliberately broken copy"
    else
        fail "systemd-analyze verify says nothing about an unknown setting here, so its silence above proves nothing"
    fi
    if systemd-analyze security --help 2>&1 | grep -q -- '--offline'; then
        # 20 means an exposure score of 2.0 on systemd's 0-10 scale; the unit scores about 1.1 today.
        if output="$(systemd-analyze security --offline=yes --threshold=20 "$scratch/tripline.service" 2>&1)"; then
            pass "systemd-analyze security: $(printf '%s\n' "$output" | tail -n 1 | sed 's/^→ //')"
        else
            fail "systemd-analyze security: exposure above 2.0, the sandbox was weakened:"$'\n'"$(printf '%s\n' "$output" | grep -v '^✓')"
        fi
    else
        skip "systemd-analyze security --offline (needs systemd 250 or newer)"
    fi
else
    fail "could not point the unit's ExecStart at a stand-in binary; is ExecStart still $binary?"
fi

# --- YAML, Kubernetes, compose, Dockerfile -------------------------------------------------------------------------

if ! python3 - "$deploy" << 'PYTHON'; then failures=$((failures + 1)); fi
import os
import re
import shlex
import sys

import yaml

deploy = sys.argv[1]
failed = 0


def check(condition, message):
    global failed
    if condition:
        print(f"ok:   {message}")
    else:
        failed += 1
        print(f"FAIL: {message}", file=sys.stderr)
    return condition


def rel(path):
    return os.path.relpath(path, os.path.dirname(deploy))


# Every YAML file parses, all documents of it.
documents = {}
for folder, subfolders, files in os.walk(deploy):
    subfolders[:] = sorted(d for d in subfolders if d != "secrets")
    for name in sorted(files):
        if name.endswith((".yaml", ".yml")):
            path = os.path.join(folder, name)
            try:
                with open(path) as handle:
                    documents[path] = [d for d in yaml.safe_load_all(handle) if d is not None]
                check(documents[path], f"{rel(path)} parses and is not empty")
            except yaml.YAMLError as error:
                check(False, f"{rel(path)} does not parse: {error}")
                documents[path] = []
check(len(documents) >= 7, f"found {len(documents)} YAML files under deploy/")

# --- Kubernetes

k8s = os.path.join(deploy, "kubernetes")
kustomization = (documents.get(os.path.join(k8s, "kustomization.yaml")) or [{}])[0]
listed = kustomization.get("resources") or []
check(kustomization.get("kind") == "Kustomization", "kubernetes/kustomization.yaml is a Kustomization")
on_disk = sorted(n for n in os.listdir(k8s) if n.endswith((".yaml", ".yml")) and n != "kustomization.yaml")
check(sorted(listed) == on_disk, f"kustomization lists every manifest: {sorted(listed)} vs {on_disk}")

objects = {}
for name in listed:
    for doc in documents.get(os.path.join(k8s, name), []):
        objects.setdefault(doc.get("kind"), []).append(doc)
        meta = doc.get("metadata") or {}
        check("namespace" not in meta, f"{name}: {doc.get('kind')} names no namespace")
expected_kinds = {"Deployment", "Service", "ConfigMap", "PersistentVolumeClaim", "Secret"}
check(set(objects) == expected_kinds, f"Kubernetes kinds {sorted(objects)} are {sorted(expected_kinds)}")
for kind in expected_kinds:
    check(len(objects.get(kind, [])) == 1, f"exactly one {kind}")


def one(kind):
    return (objects.get(kind) or [{}])[0]


def dig(value, *keys):
    for key in keys:
        if isinstance(value, dict):
            value = value.get(key)
        elif isinstance(value, list) and isinstance(key, int) and key < len(value):
            value = value[key]
        else:
            return None
    return value


deployment, service, configmap, pvc, secret = (
    one("Deployment"), one("Service"), one("ConfigMap"), one("PersistentVolumeClaim"), one("Secret"))
pod = dig(deployment, "spec", "template", "spec") or {}
containers = pod.get("containers") or [{}]
container = containers[0]
check(len(containers) == 1 and container.get("name") == "tripline", "Deployment runs one container, tripline")
check(dig(deployment, "spec", "replicas") == 1, "Deployment has 1 replica (SQLite is single-writer)")
check(dig(deployment, "spec", "strategy", "type") == "Recreate", "Deployment strategy is Recreate")
args = container.get("args") or []
check(args[:1] == ["serve"] and "--host" in args and args[args.index("--host") + 1:][:1] == ["0.0.0.0"],
      f"container runs serve --host 0.0.0.0: {args}")

ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
check(4200 in ports.values(), f"containerPort 4200: {ports}")


def port_number(port):
    return ports.get(port) if isinstance(port, str) else port


for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    get = dig(container, probe, "httpGet") or {}
    check(get.get("path") == path and port_number(get.get("port")) == 4200,
          f"{probe} is GET {path} on 4200: {get}")
startup = dig(container, "startupProbe", "httpGet", "path")
check(startup in (None, "/healthz"), f"startupProbe, if any, uses /healthz: {startup}")
check(dig(container, "resources", "requests") and dig(container, "resources", "limits", "memory"),
      "container has resource requests and a memory limit")
check(isinstance(pod.get("terminationGracePeriodSeconds"), int) and pod["terminationGracePeriodSeconds"] >= 10,
      "terminationGracePeriodSeconds is set, at least 10")
check(pod.get("enableServiceLinks") is False,
      "enableServiceLinks is false (a Service named tripline would inject TRIPLINE_PORT=tcp://...)")
pod_security = pod.get("securityContext") or {}
container_security = container.get("securityContext") or {}
check(pod_security.get("runAsNonRoot") is True and (pod_security.get("runAsUser") or 0) > 0,
      "pod runs as a non-root user")
check(container_security.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
check(container_security.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is false")
check("ALL" in (dig(container_security, "capabilities", "drop") or []), "all capabilities dropped")

env = {e.get("name"): e.get("value") for e in container.get("env") or []}
volumes = {v.get("name"): v for v in pod.get("volumes") or []}
mounts = container.get("volumeMounts") or []


def mount_of(path):
    """The mount that holds path (the longest mountPath that is path or one of its parents)."""
    best = None
    for mount in mounts:
        prefix = mount.get("mountPath", "").rstrip("/")
        if path == prefix or path.startswith(prefix + "/"):
            if best is None or len(prefix) > len(best.get("mountPath", "")):
                best = mount
    return best or {}


data_mount = next((m for m in mounts if m.get("mountPath") == "/var/lib/tripline"), {})
check(data_mount, "a volume is mounted at /var/lib/tripline")
check(dig(volumes.get(data_mount.get("name")), "persistentVolumeClaim", "claimName") == dig(pvc, "metadata", "name"),
      "/var/lib/tripline is the PersistentVolumeClaim")
check(env.get("TRIPLINE_DATABASE") == "/var/lib/tripline/tripline.sqlite", "TRIPLINE_DATABASE is on the data volume")
check(not data_mount.get("readOnly"), "the data volume is writable")

check(env.get("TRIPLINE_RULES") == "/etc/tripline/rules", "TRIPLINE_RULES is /etc/tripline/rules")
rules_mounts = [m for m in mounts if (m.get("mountPath") or "").startswith("/etc/tripline/rules")]
check(rules_mounts, "a volume is mounted at /etc/tripline/rules (or a folder of it)")
for mount in rules_mounts:
    volume = volumes.get(mount.get("name")) or {}
    check(dig(volume, "configMap", "name") == dig(configmap, "metadata", "name"),
          f"{mount.get('mountPath')} is the rules ConfigMap")
    check(mount.get("readOnly") is True and "subPath" not in mount,
          f"{mount.get('mountPath')} is read-only and not a subPath (subPath mounts never update)")

tokens = env.get("TRIPLINE_API_TOKENS_FILE") or ""
token_mount = mount_of(tokens)
token_volume = volumes.get(token_mount.get("name")) or {}
check(tokens and dig(token_volume, "secret", "secretName") == dig(secret, "metadata", "name"),
      f"TRIPLINE_API_TOKENS_FILE ({tokens}) is a file of the tokens Secret")
key = os.path.relpath(tokens, token_mount.get("mountPath", "/")) if token_mount else None
secret_data = {**(secret.get("data") or {}), **(secret.get("stringData") or {})}
check(key in secret_data, f"the Secret has the key {key}")
# The template must never carry a token: only comments and blank lines.
template = secret_data.get(key) or ""
check(all(not line.strip() or line.lstrip().startswith("#") for line in str(template).splitlines()),
      "the Secret template holds no token lines, only comments")
tmp_volume = volumes.get(mount_of("/tmp").get("name")) or {}
check(mount_of("/tmp").get("mountPath") == "/tmp" and "emptyDir" in tmp_volume,
      "/tmp is an emptyDir (the root file system is read-only)")

service_ports = dig(service, "spec", "ports") or []
check(any(p.get("port") == 4200 and port_number(p.get("targetPort", p.get("port"))) == 4200 for p in service_ports),
      f"Service exposes 4200 to the container's 4200: {service_ports}")
labels = dig(deployment, "spec", "template", "metadata", "labels") or {}
selector = dig(service, "spec", "selector") or {}
check(selector and all(labels.get(k) == v for k, v in selector.items()), "Service selector matches the pod labels")
match_labels = dig(deployment, "spec", "selector", "matchLabels") or {}
check(match_labels and all(labels.get(k) == v for k, v in match_labels.items()),
      "Deployment selector matches its pod labels")

check("ReadWriteOnce" in (dig(pvc, "spec", "accessModes") or []) and dig(pvc, "spec", "resources", "requests", "storage"),
      "PVC is ReadWriteOnce with a storage request")

automations = (configmap.get("data") or {})
check(automations, "the rules ConfigMap holds at least one automation")
for name, text in automations.items():
    check(name.endswith((".yaml", ".yml", ".json")), f"ConfigMap key {name} is a rules file name")
    try:
        rule = yaml.safe_load(text)
    except yaml.YAMLError as error:
        check(False, f"ConfigMap {name} does not parse: {error}")
        continue
    check(isinstance(rule, dict) and {"name", "trigger", "actions"} <= set(rule),
          f"ConfigMap {name} is an automation (name, trigger, actions)")

# --- compose

compose = (documents.get(os.path.join(deploy, "compose.yaml")) or [{}])[0]
services = compose.get("services") or {}
check({"tripline", "postgres", "kafka"} <= set(services), f"compose services: {sorted(services)}")
tripline = services.get("tripline") or {}
check(not tripline.get("profiles"), "compose: tripline starts without a profile")
for optional in ("postgres", "kafka"):
    check("scale-out" in ((services.get(optional) or {}).get("profiles") or []),
          f"compose: {optional} is in the scale-out profile")


def short_volume(entry):
    if isinstance(entry, dict):
        return entry.get("source"), entry.get("target"), bool(entry.get("read_only"))
    parts = entry.split(":")
    return parts[0], parts[1] if len(parts) > 1 else None, len(parts) > 2 and "ro" in parts[2].split(",")


compose_volumes = [short_volume(v) for v in tripline.get("volumes") or []]
data = [v for v in compose_volumes if v[1] == "/var/lib/tripline"]
check(data and data[0][0] in (compose.get("volumes") or {}), "compose: /var/lib/tripline is a named volume")
rules = [v for v in compose_volumes if v[1] == "/etc/tripline/rules"]
check(rules and rules[0][2] and os.path.isdir(os.path.normpath(os.path.join(deploy, rules[0][0]))),
      "compose: the repository's rules folder is mounted read-only at /etc/tripline/rules")
secret_names = [s if isinstance(s, str) else s.get("source") for s in tripline.get("secrets") or []]
top_secrets = compose.get("secrets") or {}
check(secret_names and all(dig(top_secrets, s, "file") for s in secret_names),
      "compose: tripline's secrets are file secrets")
compose_env = tripline.get("environment") or {}
if isinstance(compose_env, list):
    compose_env = dict(item.split("=", 1) for item in compose_env)
check(compose_env.get("TRIPLINE_API_TOKENS_FILE") in [f"/run/secrets/{s}" for s in secret_names],
      "compose: TRIPLINE_API_TOKENS_FILE is the mounted secret")
health = " ".join(dig(tripline, "healthcheck", "test") or [])
check(re.search(r"127\.0\.0\.1:4200/(healthz|readyz)", health), f"compose: tripline health check: {health}")
check(any(str(p).endswith(":4200") for p in tripline.get("ports") or []), "compose: publishes container port 4200")
check(tripline.get("read_only") is True, "compose: tripline's root file system is read-only")

# --- Dockerfile

with open(os.path.join(deploy, "Dockerfile")) as handle:
    raw = handle.read().splitlines()
instructions, pending = [], ""
for line in raw:
    stripped = line.strip()
    if stripped.startswith("#") or (not stripped and not pending):
        continue  # comment lines may sit inside a continuation; Docker drops them too
    if stripped.endswith("\\"):
        pending += stripped[:-1] + " "
        continue
    pending += stripped
    word, _, rest = pending.partition(" ")
    instructions.append((word.upper(), rest.strip()))
    pending = ""
arg_defaults = {}
for word, rest in instructions:
    if word == "FROM":
        break
    if word == "ARG" and "=" in rest:
        name, value = rest.split("=", 1)
        arg_defaults[name] = value
stages, current = [], None
for word, rest in instructions:
    if word == "FROM":
        image = re.sub(r"\$\{(\w+)\}", lambda m: arg_defaults.get(m.group(1), m.group(0)), rest.split()[0])
        current = {"image": image, "lines": []}
        stages.append(current)
    elif current is not None:
        current["lines"].append((word, rest))
check(len(stages) >= 2, f"Dockerfile is multi-stage: {[s['image'] for s in stages]}")
build, runtime = stages[0], stages[-1]
match = re.fullmatch(r"swift:6\.(\d+)(\.\d+)?-bookworm", build["image"])
check(match and int(match.group(1)) >= 1, f"build stage is Swift 6.1+ on bookworm: {build['image']}")
check(runtime["image"] == "debian:bookworm-slim", f"runtime stage is debian:bookworm-slim: {runtime['image']}")


def stage_text(stage, word):
    return [rest for w, rest in stage["lines"] if w == word]


build_runs = " ".join(stage_text(build, "RUN"))
check("swift build -c release --product tripline --static-swift-stdlib" in build_runs,
      "build stage runs swift build -c release --product tripline --static-swift-stdlib")
for package in ("libsqlite3-dev", "librdkafka-dev"):
    check(re.search(rf"\b{package}\b", build_runs), f"build stage installs {package}")
runtime_runs = " ".join(stage_text(runtime, "RUN"))
for package in ("libsqlite3-0", "libssl3", "librdkafka1", "ca-certificates", "curl"):
    check(re.search(rf"(^|\s){re.escape(package)}(\s|$)", runtime_runs), f"runtime stage installs {package}")
for package in ("libcurl4", "libxml2"):
    check(not re.search(rf"(^|\s){re.escape(package)}(\s|$)", runtime_runs), f"runtime stage leaves out {package} (not linked)")
users = stage_text(runtime, "USER")
user = users[-1].split(":")[0] if users else "root"
check(user not in ("root", "0"), f"runtime stage ends with a non-root USER: {users}")
check(re.search(r"--uid\s+" + re.escape(user) + r"\b", runtime_runs) or not user.isdigit(),
      f"USER {user} is the uid the image creates")
check(str(pod_security.get("runAsUser")) == user and str(pod_security.get("fsGroup")) == users[-1].split(":")[-1],
      f"Kubernetes runAsUser/fsGroup ({pod_security.get('runAsUser')}/{pod_security.get('fsGroup')}) match USER {users}")
check(any("/healthz" in h for h in stage_text(runtime, "HEALTHCHECK")), "HEALTHCHECK hits /healthz")
check(any("/var/lib/tripline" in v for v in stage_text(runtime, "VOLUME")), "VOLUME /var/lib/tripline")
check(any("4200" in e.split() for e in stage_text(runtime, "EXPOSE")), "EXPOSE 4200")
check(stage_text(runtime, "ENTRYPOINT") == ['["tripline"]'], f"ENTRYPOINT [\"tripline\"]: {stage_text(runtime, 'ENTRYPOINT')}")
cmd = stage_text(runtime, "CMD")
check(cmd and '"serve"' in cmd[-1] and '"0.0.0.0"' in cmd[-1], f"CMD serves on 0.0.0.0: {cmd}")
env_line = " ".join(stage_text(runtime, "ENV"))
for setting in ("TRIPLINE_DATABASE=/var/lib/tripline/tripline.sqlite", "TRIPLINE_RULES=/etc/tripline/rules"):
    check(setting in env_line.split(), f"ENV {setting}")
check(any(c.split()[-1].rstrip("/") == "/etc/tripline/rules" and c.split()[-2].rstrip("/") == "rules"
          for c in stage_text(runtime, "COPY") if len(c.split()) >= 2),
      "COPY rules/ /etc/tripline/rules/")

sys.exit(1 if failed else 0)
PYTHON

# --- tools that may or may not be installed ------------------------------------------------------------------------

if command -v kubectl > /dev/null 2>&1; then
    if output="$(kubectl kustomize "$deploy/kubernetes" 2>&1)"; then
        pass "kubectl kustomize renders $(printf '%s\n' "$output" | grep -c '^kind:') objects"
    else
        fail "kubectl kustomize:"$'\n'"$output"
    fi
else
    skip "kubectl kustomize (kubectl not installed)"
fi

compose=()
if docker compose version > /dev/null 2>&1; then
    compose=(docker compose)
elif command -v docker-compose > /dev/null 2>&1; then
    compose=(docker-compose)
fi
if [ ${#compose[@]} -gt 0 ]; then
    # config resolves paths and profiles without a Docker engine; it does not require the secret files to exist.
    if output="$(cd "$deploy" && "${compose[@]}" -f compose.yaml --profile scale-out config --quiet 2>&1)"; then
        pass "${compose[*]} config accepts compose.yaml"
    else
        fail "${compose[*]} config:"$'\n'"$output"
    fi
else
    skip "docker compose config (no docker compose plugin or docker-compose)"
fi

if command -v hadolint > /dev/null 2>&1; then
    if output="$(hadolint "$deploy/Dockerfile" 2>&1)"; then pass "hadolint"; else fail "hadolint:"$'\n'"$output"; fi
else
    skip "hadolint (not installed)"
fi

if command -v shellcheck > /dev/null 2>&1; then
    if output="$(shellcheck "$deploy/check.sh" 2>&1)"; then pass "shellcheck check.sh"; else fail "shellcheck:"$'\n'"$output"; fi
else
    skip "shellcheck (not installed)"
fi

if [ "$failures" -gt 0 ]; then
    printf '\ndeploy/check.sh: %d check(s) failed\n' "$failures" >&2
    exit 1
fi
printf '\ndeploy/check.sh: all checks passed\n'
