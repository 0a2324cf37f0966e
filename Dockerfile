# shoal in a container: a build stage with the toolchain rust-toolchain.toml
# pins, and a small glibc runtime (debian slim) that runs as a non-root user.
#
#   docker build -t shoal .
#   docker run --rm -p 11211:11211 \
#     --ulimit memlock=-1 --ulimit nofile=65536:65536 \
#     --security-opt seccomp=unconfined shoal
#
# io_uring needs all three run flags; README's "Docker" section says why (and
# how to keep a seccomp profile instead of none). scripts/packaging-check.sh
# lints this file with hadolint and checks the toolchain tag below against
# rust-toolchain.toml.

FROM rust:1.95.0-slim-trixie AS build
WORKDIR /src
# glommio's build script runs `git submodule update` unless it is told where
# its liburing is; the slim image has no git, and the source is vendored.
ENV GLOMMIO_LIBURING_DIR=/src/vendor/glommio/liburing \
    CARGO_PROFILE_RELEASE_DEBUG=0
COPY . .
# The registry and target caches survive rebuilds; the binary is copied out
# of the cache mount so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin shoal \
    && install -D -m 0755 target/release/shoal /out/shoal

FROM debian:trixie-slim
# A fixed uid/gid, so a bind-mounted data dir can be chowned to it.
RUN groupadd --system --gid 10001 shoal \
    && useradd --system --no-log-init --uid 10001 --gid shoal \
       --home-dir /var/lib/shoal --shell /usr/sbin/nologin shoal \
    && install -d -o shoal -g shoal -m 0700 /var/lib/shoal
COPY --from=build /out/shoal /usr/local/bin/shoal
COPY packaging/docker/shoal.toml /etc/shoal/shoal.toml
# Numeric, so Kubernetes' runAsNonRoot can check it is not root.
USER 10001:10001
WORKDIR /var/lib/shoal
VOLUME ["/var/lib/shoal"]
# 11211: the memcached port; 11299: the admin endpoint (multi-tenant mode).
EXPOSE 11211 11299
# Flags given to `docker run` come after the config file, and flags win.
ENTRYPOINT ["/usr/local/bin/shoal", "--config", "/etc/shoal/shoal.toml"]
