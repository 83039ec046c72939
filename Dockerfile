# syntax=docker/dockerfile:1
# The driftwatch image: the release binary on a distroless runtime, running as non-root.
#
#   docker build -t ghcr.io/driftwatch/driftwatch:0.1.0 .
#
# Runtime: gcr.io/distroless/cc-debian13. The binary links glibc (libc, libm, libdl, the loader),
# libgcc_s, zlib (libz.so.1: rdkafka's `libz` feature links the system zlib) and OpenSSL 3
# (libssl.so.3, libcrypto.so.3: rdkafka's `ssl` feature, Kafka over TLS and SASL/SCRAM);
# librdkafka and zstd are built in statically. distroless cc-debian12 has no zlib, cc-debian13
# ships zlib1g and libssl3t64, so every library the binary needs is in the runtime and nothing
# but the binary is copied. The build stage's image carries libssl-dev and pkg-config.
# scripts/check-chart.sh checks that claim: it builds the same root filesystem (the binary plus
# exactly the libraries `ldd` lists, each from a package this runtime ships) and runs
# `driftwatch --version` and `driftwatch validate` inside it.

FROM rust:1-bookworm AS build
# cmake: rdkafka's cmake build (its default mklove build needs only make and a C compiler).
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# The release profile keeps line tables (for local profiling): 690 MB. The image drops them and
# keeps the symbols, so backtraces still name functions: about 150 MB.
ENV CARGO_PROFILE_RELEASE_STRIP=debuginfo
# The one line to change if the package layout changes.
ARG BUILD="cargo build --release --locked -p driftwatch-cli --bin driftwatch"
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    ${BUILD} \
 && install -D -m 0755 target/release/driftwatch /out/driftwatch

FROM gcr.io/distroless/cc-debian13:nonroot
COPY --from=build /out/driftwatch /usr/local/bin/driftwatch
# nonroot (65532:65532), as the chart's podSecurityContext expects.
USER 65532:65532
# /metrics, /healthz, /readyz (metrics.listen; the chart sets 0.0.0.0:9100).
EXPOSE 9100
ENTRYPOINT ["/usr/local/bin/driftwatch"]
CMD ["run", "--config", "/etc/driftwatch/config.yaml"]
