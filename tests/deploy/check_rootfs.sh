#!/usr/bin/env bash
# The image's root filesystem, built here without Docker: an empty tree with the release binary
# where the Dockerfile copies it, plus exactly the shared libraries `ldd` lists, each of which
# must belong to a Debian package the Dockerfile's distroless runtime ships (that image provides
# them; nothing else is copied into it). Inside that tree, under `unshare -r --net chroot` (a user
# and a network namespace: no host files, no network), `driftwatch --version` and `driftwatch
# validate` on the configs the chart renders must work; as root, again as the image's user
# 65532. Where user namespaces are refused, the fallback runs the tree's own loader with
# `env -i` and --library-path at the tree (weaker: the loader still searches the system
# library directories after it), and says so.
#
# Each config is validated as rendered (its { env: … } and { file: … } references as they are),
# with exactly the environment its Deployment declares (CONFIG.env, NAME=VALUE lines from
# check_config.py: Secret-backed variables hold DUMMY) and its { file: … } secrets (CONFIG.files)
# at their paths in the tree, holding DUMMY. Then each variable of CONFIG.refs unset in turn, and
# each file removed in turn: validate must fail naming it. DUMMY must never appear in validate's
# output.
#
# Usage: check_rootfs.sh BINARY TREE DUMMY CONFIG...
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="$1" tree="$2" dummy="$3"; shift 3
configs=("$@")
[[ -n "$dummy" ]] || { echo "DUMMY is empty" >&2; exit 1; }

runtime=$(awk 'toupper($1) == "FROM" { image = $2 } END { print image }' "$root/Dockerfile")
# Each distroless image's Debian packages (distroless base/config.bzl and cc/config.bzl).
case "$runtime" in
    gcr.io/distroless/cc-debian12*) shipped="libc6 libssl3 libgomp1 libstdc++6 libgcc-s1 gcc-12-base" ;;
    gcr.io/distroless/cc-debian13*) shipped="libc6 libssl3t64 libzstd1 zlib1g libgomp1 libstdc++6 libgcc-s1 gcc-14-base" ;;
    gcr.io/distroless/base-debian12*) shipped="libc6 libssl3" ;;
    gcr.io/distroless/base-debian13*) shipped="libc6 libssl3t64 libzstd1 zlib1g" ;;
    gcr.io/distroless/static*) shipped="" ;;
    *) echo "unknown runtime image $runtime in the Dockerfile: add its package list here" >&2; exit 1 ;;
esac
norm() { local p="${1%%:*}"; echo "${p%t64}"; }  # libssl3t64 (trixie) is libssl3 (bookworm)
declare -A ships=()
for p in $shipped; do ships[$(norm "$p")]=1; done

owner() {  # the Debian package that installed a library path (usrmerge: try both spellings)
    local path="$1" alt
    for alt in "$path" "$(readlink -f "$path")" "${path#/usr}" "/usr$path"; do
        dpkg -S "$alt" 2>/dev/null | head -n 1 | cut -d: -f1 && return 0
    done
    return 1
}

rm -rf "$tree"
mkdir -p "$tree/usr/local/bin" "$tree/etc/driftwatch" "$tree/tmp"
install -m 0755 "$bin" "$tree/usr/local/bin/driftwatch"
libs=()
while read -r path; do
    pkg=$(owner "$path") || { echo "no Debian package owns $path" >&2; exit 1; }
    if [[ -z "${ships[$(norm "$pkg")]:-}" ]]; then
        echo "the binary links $path from $pkg, which $runtime does not ship" >&2
        exit 1
    fi
    cp --parents -L "$path" "$tree"
    libs+=("$(basename "$path") ($pkg)")
done < <(ldd "$bin" | awk '/=>/ { if ($3 ~ /^\//) print $3; next } $1 ~ /^\// { print $1 }')
if ldd "$bin" | grep -q 'not found'; then
    echo "ldd: a library is not found" >&2
    exit 1
fi
echo "runtime $runtime; libraries: ${libs[*]}"
i=0
for c in "${configs[@]}"; do
    cp "$c" "$tree/etc/driftwatch/config-$i.yaml"
    i=$((i + 1))
    # The Secrets a config reads as { file: … } are mounted there in the pod.
    if [[ -f "$c.files" ]]; then
        while IFS= read -r f; do
            [[ -n "$f" ]] && mkdir -p "$tree$(dirname "$f")" && printf '%s' "$dummy" >"$tree$f"
        done <"$c.files"
    fi
done

# Every runner passes exactly the environment in the array `envs` (env -i).
envs=()
run_userns() { env -i "${envs[@]}" /usr/bin/unshare -r --net /usr/sbin/chroot "$tree" /usr/local/bin/driftwatch "$@"; }
run_nonroot() { env -i "${envs[@]}" /usr/bin/unshare --net /usr/sbin/chroot --userspec=65532:65532 "$tree" /usr/local/bin/driftwatch "$@"; }
loader=$(ldd "$bin" | awk '$1 ~ /^\// { print $1 }')
run_loader() {
    env -i "${envs[@]}" "$tree$loader" --library-path "$tree/lib/x86_64-linux-gnu:$tree/usr/lib/x86_64-linux-gnu:$tree/lib64" \
        "$tree/usr/local/bin/driftwatch" "$@"
}

if env -i /usr/bin/unshare -r --net /usr/sbin/chroot "$tree" /usr/local/bin/driftwatch --version >/dev/null 2>&1; then
    runners=(run_userns)
    method="unshare -r --net chroot"
    if [[ "$(id -u)" == 0 ]]; then
        runners+=(run_nonroot)
        method="$method, and as uid 65532"
    fi
    in_tree=/etc/driftwatch
    file_root=""
else
    echo "unshare -r chroot is refused here (no user namespaces?): falling back to env -i and the tree's loader"
    runners=(run_loader)
    method="env -i + the tree's loader (fallback)"
    in_tree="$tree/etc/driftwatch"
    # Outside a chroot the config's absolute { file: … } paths would point at the host.
    file_root="fallback"
fi
echo "running in the tree via $method"
for run in "${runners[@]}"; do
    "$run" --version
done

log="$tree.log"
no_dummy() {
    if grep -qF "$dummy" "$log"; then
        echo "$1: the dummy secret value appears in validate's output" >&2
        exit 1
    fi
}
unsets=0 missing=0
for ((j = 0; j < i; j++)); do
    c="${configs[$j]}"
    for f in env refs files; do
        [[ -f "$c.$f" ]] || { echo "$c.$f is missing (check_config.py writes it)" >&2; exit 1; }
    done
    declared=() refs=() files=()
    while IFS= read -r line; do [[ -n "$line" ]] && declared+=("$line"); done <"$c.env"
    while IFS= read -r v; do [[ -n "$v" ]] && refs+=("$v"); done <"$c.refs"
    while IFS= read -r f; do [[ -n "$f" ]] && files+=("$f"); done <"$c.files"
    if [[ -n "$file_root" && ${#files[@]} -gt 0 ]]; then
        echo "the fallback cannot validate $c: its { file: … } secrets (${files[*]}) are absolute paths" >&2
        exit 1
    fi
    for run in "${runners[@]}"; do
        envs=("${declared[@]}")
        if ! "$run" validate --config "$in_tree/config-$j.yaml" >"$log" 2>&1; then
            cat "$log"
            echo "$run: validate failed on $(basename "$c") with the Deployment's environment (${declared[*]%%=*})" >&2
            exit 1
        fi
        no_dummy "$run $(basename "$c")"
        tail -n 1 "$log"
        for var in "${refs[@]}"; do
            envs=()
            for line in "${declared[@]}"; do [[ "${line%%=*}" == "$var" ]] || envs+=("$line"); done
            if "$run" validate --config "$in_tree/config-$j.yaml" >"$log" 2>&1; then
                cat "$log"; echo "$run: validate passed with \$$var unset" >&2; exit 1
            fi
            grep -qF "$var" "$log" || { cat "$log"; echo "$run: validate failed with \$$var unset without naming it" >&2; exit 1; }
            no_dummy "$run without \$$var"
            echo "$run without \$$var: $(grep -F "$var" "$log" | head -n 1)"
            unsets=$((unsets + 1))
        done
        envs=("${declared[@]}")
        for f in "${files[@]}"; do
            mv "$tree$f" "$tree$f.away"
            if "$run" validate --config "$in_tree/config-$j.yaml" >"$log" 2>&1; then
                mv "$tree$f.away" "$tree$f"
                cat "$log"; echo "$run: validate passed without $f" >&2; exit 1
            fi
            mv "$tree$f.away" "$tree$f"
            grep -qF "$f" "$log" || { cat "$log"; echo "$run: validate failed without $f, not naming it" >&2; exit 1; }
            no_dummy "$run without $f"
            echo "$run without $f: $(grep -F "$f" "$log" | head -n 1)"
            missing=$((missing + 1))
        done
    done
done
echo "ran --version and validate on $i config(s) in the tree via $method (the Deployment's env;" \
    "$unsets unset-variable and $missing missing-file refusals naming them; the dummy secret in no output)"
