# syntax=docker/dockerfile:1.7
#
# Weir host image: the `weir` binary, the Wasm modules the compose pipelines
# run, the index templates and the compose config, laid out as
#
#   /usr/local/bin/weir
#   /opt/weir/weir.toml            (deploy/weir.compose.toml)
#   /opt/weir/expertai.toml        (deploy/weir.compose.expertai.toml)
#   /opt/weir/modules/<name>.wasm  (built by `cargo xtask modules`)
#   /opt/weir/templates/*.json     (config/templates)
#   /var/cache/weir/               compile cache (runtime.cache_dir), owned by
#                                  the runtime user `weir`; compose mounts the
#                                  weir-cache volume here so it outlives containers
#
# Build from the repository root: docker build -t weir:local .
# The workspace needs every member's manifest to resolve, so the builder
# copies all of them (deploy-check verifies this list against Cargo.toml).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
# rdkafka builds librdkafka from source: C toolchain (in the image),
# pkg-config and the OpenSSL and zlib headers.
RUN apt-get update \
 && apt-get install -y --no-install-recommends pkg-config libssl-dev zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-wasip2
WORKDIR /src
# The whole workspace (see .dockerignore): every member must be present
# for cargo to load the workspace.
COPY . .
# The modules deploy/weir.compose.toml runs (one place: keep in sync with it;
# deploy-check fails when they disagree).
ARG WEIR_MODULES="text-clean detect-hate classify-sentiment enrich"
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,id=weir-target,sharing=locked \
    cargo build --release -p weir \
 && cargo xtask modules ${WEIR_MODULES} \
 && mkdir -p /out/modules \
 && cp target/release/weir /out/weir \
 && for m in ${WEIR_MODULES}; do cp "dist/modules/$m.wasm" /out/modules/; done

FROM debian:${DEBIAN_RELEASE}-slim
# libssl: rdkafka links OpenSSL dynamically; curl: the compose healthcheck.
# /opt/weir stays root's (the runtime user can't change its modules or
# config); the compile cache lives in a folder the runtime user owns, so
# modules compiled once are reused at the next start.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl libssl3t64 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /opt/weir --shell /usr/sbin/nologin weir \
 && install -d -o weir -g weir -m 0700 /var/cache/weir
COPY --from=build /out/weir /usr/local/bin/weir
COPY --from=build /out/modules/ /opt/weir/modules/
COPY config/templates/ /opt/weir/templates/
COPY deploy/weir.compose.toml /opt/weir/weir.toml
COPY deploy/weir.compose.expertai.toml /opt/weir/expertai.toml
USER weir
WORKDIR /opt/weir
EXPOSE 9464
ENTRYPOINT ["weir"]
CMD ["run", "--config", "/opt/weir/weir.toml"]
