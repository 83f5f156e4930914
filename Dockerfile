# syntax=docker/dockerfile:1
# The podgrace image: one statically linked binary (musl) on distroless/static.
#   docker build -t ghcr.io/podgrace/podgrace:0.1.0 .
# Static on purpose: the same binary is copied by the preStop helper init container into
# application images (`podgrace install-helper`), which may be Alpine (musl), distroless (glibc)
# or anything else; a static binary runs in all of them.
# The Helm chart runs it as `args: ["serve"]` with user 65532 and a read-only root filesystem.

FROM rust:1-bookworm AS builder
ARG TARGETARCH
WORKDIR /src
# musl-tools: the C parts (ring, mimalloc) are compiled with musl-gcc.
RUN apt-get update && apt-get install -y --no-install-recommends musl-tools && rm -rf /var/lib/apt/lists/*
RUN case "${TARGETARCH:-amd64}" in \
      amd64) echo x86_64-unknown-linux-musl ;; \
      arm64) echo aarch64-unknown-linux-musl ;; \
      *) echo "unsupported architecture ${TARGETARCH}" >&2; exit 1 ;; \
    esac > /rust-target \
    && rustup target add "$(cat /rust-target)"
# Manifests first, then the sources: a change of docs, chart or tests does not rebuild anything.
# Cargo checks that every target declared in Cargo.toml exists, so the bench and example sources
# come along although only the binary is built.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY crates ./crates
COPY benches ./benches
COPY bench/floor.rs ./bench/floor.rs
# BuildKit caches: downloaded crates and compiled dependencies survive between builds, so a
# source change recompiles podgrace only. The binary is copied out of the cached target dir.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin podgrace --target "$(cat /rust-target)" \
    && install -D -m 0755 "target/$(cat /rust-target)/release/podgrace" /out/podgrace

# No libc, no shell, no package manager; the nonroot tag runs as 65532.
FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="podgrace" \
      org.opencontainers.image.description="Kubernetes mutating admission webhook that makes pods start and stop gracefully" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/podgrace /podgrace
USER 65532:65532
EXPOSE 8443
ENTRYPOINT ["/podgrace"]
CMD ["serve"]
