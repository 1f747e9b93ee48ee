# likes: one node of the distributed likes service.
# Build:  make image      (docker build -t likes:dev .)
# Run:    docker run -p 8080:8080 likes:dev
# Both stages use the same base so that better-sqlite3's native addon matches the runtime's
# Node ABI and glibc. A release, not `node:24-bookworm-slim`: a rebuild of one commit gets the
# same Node (make test-image stands in this very version from the npm registry).
ARG NODE_IMAGE=node:24.22.3-bookworm-slim

FROM ${NODE_IMAGE} AS build
# Toolchain for node-gyp: better-sqlite3 always compiles from source (below), whether or not
# its prebuilt binary could be downloaded, so that the network does not choose the binary.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# CI=true: lefthook's postinstall skips installing git hooks.
# nodedir: node-gyp uses this Node's own headers instead of downloading them.
ENV CI=true \
    npm_config_build_from_source=true \
    npm_config_nodedir=/usr/local \
    npm_config_fund=false \
    npm_config_audit=false \
    npm_config_update_notifier=false
# Dependencies first: this layer is reused while only sources change.
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig*.json ./
COPY src ./src
# The addon's sources, objects and test extension are not needed to run it (24 MB of 26).
RUN npm run build \
 && npm prune --omit=dev \
 && cd node_modules/better-sqlite3 \
 && rm -rf deps src build/deps build/Release/obj build/Release/obj.target build/Release/.deps \
      build/Release/test_extension.node build/Release/*.a

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    LIKES_HTTP_PORT=8080 \
    LIKES_PEER_PORT=7946 \
    LIKES_ADMIN_PORT=9464 \
    LIKES_DATA_DIR=/data
WORKDIR /app
# Code stays owned by root: the service user can read it, not change it.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# /data is the only place the node writes (a volume in Kubernetes); uid 1000 is the base's `node`.
RUN mkdir -p /data && chown 1000:1000 /data
# Numeric user: Kubernetes' runAsNonRoot can only verify a numeric uid.
USER 1000:1000
EXPOSE 8080 7946 9464
# No curl in the slim base: Node's fetch does the probe.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.LIKES_HTTP_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node is PID 1 and handles SIGTERM itself (graceful shutdown within 5 s).
CMD ["node", "dist/main.js"]
