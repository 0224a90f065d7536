# pathwatch: multi-stage build, static-ish runtime on distroless, non-root.
# Build:  docker build -t pathwatch .
# Run:    docker run -p 9778:9778 -v $PWD/examples:/etc/pathwatch:ro pathwatch \
#           serve --config /etc/pathwatch/local.yaml
# Pinned to exact versions (tags; pin by digest in your registry mirror for reproducibility).
FROM rust:1.95.0-slim-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: source edits do not rebuild them.
COPY Cargo.toml Cargo.lock build.rs ./
# The release link order (build.rs; BENCHMARKS.md "issue 19"): 6 MiB less resident memory.
COPY build build
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src src
# Cargo compares modification times: make sure the real sources are newer than the stubs.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# distroless/cc has glibc and CA certificates, no shell, and runs as uid 65532 ("nonroot").
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/pathwatch /usr/local/bin/pathwatch
# distroless's "nonroot" user, numeric so Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
EXPOSE 9778
# No HEALTHCHECK: the image has no shell or curl, and Docker's HEALTHCHECK runs a command in the
# container. Kubernetes and Cloud Run probe /healthz (liveness) and /readyz (readiness) over
# HTTP themselves (see k8s/); /readyz answers as soon as pathwatch serves, so a slow probe never
# holds the pod out of service.
ENTRYPOINT ["/usr/local/bin/pathwatch"]
CMD ["serve", "--config", "/etc/pathwatch/pathwatch.yaml", "--listen", "0.0.0.0:9778"]
