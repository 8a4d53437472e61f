# kvd container image. Two stages:
#   builder: Debian 12 with the project's own set-up script (scripts/setup.sh, the README's), then
#            a Release build of kvd and kvctl; it also lists the Debian packages that own the
#            shared libraries the two binaries load.
#   runtime: debian:12-slim with exactly those packages, a non-root user, kvd, kvctl and the
#            Kubernetes entrypoint. Ports: 2379 client (gRPC), 2380 peer, 2381 metrics/health.
# Build:  docker build -t kvd:dev .
# Run:    docker run --rm -p 2379:2379 -p 2381:2381 -v kvd-data:/var/lib/kvd kvd:dev
# See docs/deployment.md.
FROM debian:12 AS builder
ENV DEBIAN_FRONTEND=noninteractive
WORKDIR /src
# The set-up script first, alone, so that the package layer is cached across source changes.
COPY scripts/setup.sh scripts/setup.sh
RUN bash scripts/setup.sh && rm -rf /var/lib/apt/lists/*
COPY . .
RUN cmake -S . -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKV_WERROR=ON \
 && cmake --build /build --target kvd kvctl -j "$(nproc)" \
 && mkdir -p /out \
 && cp /build/server/kvd /build/cli/kvctl /out/ \
 && strip /out/kvd /out/kvctl \
 && bash scripts/runtime-packages.sh /out/kvd /out/kvctl > /out/runtime-packages.txt \
 && cat /out/runtime-packages.txt

FROM debian:12-slim AS runtime
ENV DEBIAN_FRONTEND=noninteractive
COPY --from=builder /out/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update -qq \
 && xargs -a /tmp/runtime-packages.txt apt-get install -y -qq --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kvd --shell /usr/sbin/nologin kvd \
 && mkdir -p /var/lib/kvd \
 && chown kvd:kvd /var/lib/kvd \
 && chmod 700 /var/lib/kvd
COPY --from=builder /out/kvd /out/kvctl /usr/local/bin/
COPY deploy/kubernetes/entrypoint.sh /usr/local/bin/kvd-k8s-entrypoint
USER 10001:10001
WORKDIR /var/lib/kvd
VOLUME /var/lib/kvd
EXPOSE 2379 2380 2381
# Liveness only (the process serves its HTTP endpoints); readiness is /readyz. No curl in the
# image: bash's /dev/tcp sends one HTTP/1.0 request and checks the status line.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2381 && printf 'GET /livez HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["/usr/local/bin/kvd"]
CMD ["--name=default", "--data-dir=/var/lib/kvd/data", \
     "--listen-client-urls=http://0.0.0.0:2379", "--advertise-client-urls=http://127.0.0.1:2379", \
     "--listen-peer-urls=http://0.0.0.0:2380", "--listen-metrics-urls=http://0.0.0.0:2381", \
     "--log-format=json"]
