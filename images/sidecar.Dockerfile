# syntax=docker/dockerfile:1.7
# The Gatehouse sidecar image: the enforcement proxy the mutating webhook injects into workload pods.
# Build from the repository root:  docker build -f images/sidecar.Dockerfile -t gatehouse-sidecar .
# (BuildKit reads images/sidecar.Dockerfile.dockerignore, which admits only what the build needs.)

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
# 2 MiB semi-spaces keep the sidecar's RSS near its 120 MB goal at no measurable CPU cost
# (bench/README.md, "node flags"). --liftoff-only is not allowed in NODE_OPTIONS, so it is in ENTRYPOINT.
ENV NODE_ENV=production NODE_OPTIONS=--max-semi-space-size=2
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# The discovery client loads its .proto at run time from /app/api/proto (api/proto/discovery-proto.ts).
COPY api/proto/gatehouse ./api/proto/gatehouse
# The injected securityContext runs the sidecar as 15532; the image says the same, numerically.
USER 15532:15532
# Kubernetes probes /healthz and /readyz (the startup probe gates the app); no Docker HEALTHCHECK.
HEALTHCHECK NONE
# --liftoff-only keeps the 12 MB SQL parser (WebAssembly) on V8's baseline compiler: ~30 MiB less RSS.
ENTRYPOINT ["node", "--liftoff-only", "/app/dist/cli/main.js"]
CMD ["sidecar"]
