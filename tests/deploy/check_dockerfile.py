"""The Dockerfile agrees with the workspace and the chart.

Usage: check_dockerfile.py REPO_DIR

A multi-stage build: a rust:1-bookworm builder whose cargo command names a workspace package
and one of its binaries, and a distroless :nonroot runtime that receives only that binary at
/usr/local/bin/driftwatch, runs as a non-root user, exposes the chart's metrics port and starts
the binary with the chart's arguments.
"""

import os
import re
import shlex
import sys
import tomllib

import yaml

from manifests import fail


def main(repo):
    with open(os.path.join(repo, "Dockerfile"), encoding="utf-8") as f:
        text = f.read()
    lines = [l.strip() for l in re.sub(r"\\\n", " ", text).splitlines() if l.strip() and not l.strip().startswith("#")]
    problems = []
    froms = [l.split()[1:] for l in lines if l.upper().startswith("FROM ")]
    if len(froms) < 2:
        problems.append("not a multi-stage build")
    else:
        if not froms[0][0].startswith("rust:1-bookworm"):
            problems.append(f"builder is {froms[0][0]}, expected rust:1-bookworm")
        if not re.match(r"gcr\.io/distroless/cc-debian1[23]:nonroot$", froms[-1][0]):
            problems.append(f"runtime is {froms[-1][0]}, expected gcr.io/distroless/cc-debian12/13:nonroot")
    build = next((l for l in lines if l.startswith("ARG BUILD=")), "")
    args = shlex.split(shlex.split(build.split("=", 1)[1])[0]) if build else []
    if args[:4] != ["cargo", "build", "--release", "--locked"]:
        problems.append(f"build command {args} is not cargo build --release --locked")
    pkg = args[args.index("-p") + 1] if "-p" in args else None
    binary = args[args.index("--bin") + 1] if "--bin" in args else None
    with open(os.path.join(repo, "Cargo.toml"), "rb") as f:
        members = tomllib.load(f)["workspace"]["members"]
    found = False
    for m in members:
        with open(os.path.join(repo, m, "Cargo.toml"), "rb") as f:
            manifest = tomllib.load(f)
        if manifest.get("package", {}).get("name") == pkg:
            bins = [b["name"] for b in manifest.get("bin", [])]
            found = binary in bins
            if not found:
                problems.append(f"package {pkg} ({m}/Cargo.toml) has no binary {binary} (has {bins})")
    if not found and not any(p.startswith("package") for p in problems):
        problems.append(f"no workspace member is the package {pkg!r}")
    runtime_copies = [l for l in lines[[i for i, l in enumerate(lines) if l.upper().startswith("FROM ")][-1]:] if l.upper().startswith("COPY")]
    if len(runtime_copies) != 1 or not runtime_copies[0].endswith(" /usr/local/bin/driftwatch") or "--from=build" not in runtime_copies[0]:
        problems.append(f"the runtime stage must copy only the binary to /usr/local/bin/driftwatch: {runtime_copies}")
    user = next((l.split()[1] for l in reversed(lines) if l.upper().startswith("USER ")), "")
    if user.split(":")[0] not in ("65532", "nonroot"):
        problems.append(f"USER {user!r} is not the non-root 65532")
    with open(os.path.join(repo, "helm/driftwatch/values.yaml"), encoding="utf-8") as f:
        values = yaml.safe_load(f)
    expose = [l.split()[1] for l in lines if l.upper().startswith("EXPOSE ")]
    if expose != [str(values["metrics"]["port"])]:
        problems.append(f"EXPOSE {expose} is not the chart's metrics.port {values['metrics']['port']}")
    entry = next((l for l in lines if l.upper().startswith("ENTRYPOINT ")), "")
    if entry != 'ENTRYPOINT ["/usr/local/bin/driftwatch"]':
        problems.append(f"{entry!r}: the entrypoint must be the binary")
    with open(os.path.join(repo, "helm/driftwatch/templates/deployment.yaml"), encoding="utf-8") as f:
        deployment = f.read()
    cmd = next((l for l in lines if l.upper().startswith("CMD ")), "")
    # The chart puts the global --log-format before the subcommand.
    if '"run", "--config", "/etc/driftwatch/config.yaml"]' not in deployment or cmd != 'CMD ["run", "--config", "/etc/driftwatch/config.yaml"]':
        problems.append("the image's CMD and the chart's container args differ from run --config /etc/driftwatch/config.yaml")
    if problems:
        fail("\n".join(problems))
    print(f"{froms[0][0]} -> {froms[-1][0]}, {' '.join(args)}, USER {user}, EXPOSE {expose[0]}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail(__doc__)
    main(sys.argv[1])
