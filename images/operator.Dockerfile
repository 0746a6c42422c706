# syntax=docker/dockerfile:1.7
# The Gatehouse operator image: reconcilers, admission webhooks and the policy discovery service.
# Build from the repository root:  docker build -f images/operator.Dockerfile -t gatehouse-operator .
# (BuildKit reads images/operator.Dockerfile.dockerignore, which admits only what the build needs.)

ARG NODE_IMAGE=node:22-bookworm-slim

# --- build: compile TypeScript with the full dev toolchain ---
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts are skipped: `prepare` would build before the sources are copied; no dependency needs its own.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY api ./api
COPY cli ./cli
COPY operator ./operator
COPY sidecar ./sidecar
RUN npm run build

# --- deps: production node_modules only ---
FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# --- runtime: dist + production dependencies, nothing else ---
FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
# 1,000 sidecar streams stay under 200 MB with 8 MiB semi-spaces (README, Performance: control plane).
ENV NODE_ENV=production NODE_OPTIONS=--max-semi-space-size=8
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# The discovery service loads its .proto at run time from /app/api/proto (api/proto/discovery-proto.ts).
COPY api/proto/gatehouse ./api/proto/gatehouse
COPY crds ./crds
# Non-root, numeric so that runAsNonRoot can verify it without /etc/passwd.
USER 65532:65532
# Kubernetes probes /healthz and /readyz; a Docker HEALTHCHECK would only duplicate them.
HEALTHCHECK NONE
ENTRYPOINT ["node", "/app/dist/cli/main.js"]
CMD ["operator"]
