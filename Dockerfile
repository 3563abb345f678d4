# syntax=docker/dockerfile:1
# The readygate operator image.
#   docker build -t readygate:0.1.0 --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) .
# Stages: build (all dependencies, tsc) → deps (production dependencies only) → runtime (distroless).
# scripts/stage-runtime.sh reproduces the runtime stage's /app outside Docker, and a unit test checks it.
# Without Docker or a registry: scripts/build-image.sh builds this file with buildah on base images made
# from Debian and npm, and test/integration/image.test.ts runs the result.
# Pin the base images by digest in release builds: --build-arg BUILD_IMAGE=node:24-bookworm-slim@sha256:...
ARG BUILD_IMAGE=node:24-bookworm-slim
ARG RUNTIME_IMAGE=gcr.io/distroless/nodejs24-debian12:nonroot

FROM ${BUILD_IMAGE} AS build
WORKDIR /src
ENV npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./
# Install scripts run here: the `node` devDependency's preinstall fetches the pinned Node binary that
# npm scripts use (the one the tests ran on).
RUN --mount=type=cache,target=/root/.npm npm ci
COPY tsconfig.json ./
COPY src ./src
RUN npm run build

FROM ${BUILD_IMAGE} AS deps
WORKDIR /app
ENV npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
COPY package.json package-lock.json ./
# Production dependencies only, without install scripts: none of them needs one (no native addons).
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts

# Distroless: no shell, no package manager, no npm; UID 65532 ("nonroot"). Node is PID 1 without an
# init: the operator installs its own SIGTERM/SIGINT handlers (PID 1 gets no default signal actions)
# and spawns no child processes (exec probes go through the API server), so there is nothing to reap.
FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=https://github.com/readygate/readygate
LABEL org.opencontainers.image.title="readygate" \
      org.opencontainers.image.description="Kubernetes readiness gates driven by probes run from outside the pod" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="readygate" \
      org.opencontainers.image.base.name="gcr.io/distroless/nodejs24-debian12:nonroot"
WORKDIR /app
ENV NODE_ENV=production
# Files stay owned by root and read-only to the operator's user.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
COPY crds ./crds
USER 65532:65532
EXPOSE 8081
# No HEALTHCHECK: Kubernetes probes /healthz and /readyz (see the chart).
ENTRYPOINT ["/nodejs/bin/node", "dist/main.js"]
CMD ["run"]
