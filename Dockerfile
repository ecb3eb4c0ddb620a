# syntax=docker/dockerfile:1
# Build: the full Node 20 image has the compiler and Python that node-gyp needs for the
# native pieces (mmap-io, lz4, the sendfile addon). `npm ci` runs the root install script
# (the sendfile addon) and then `prepare` (scripts/build.mjs: TypeScript to dist/), so
# everything the build reads is copied first.
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY vendor ./vendor
COPY native ./native
COPY scripts ./scripts
COPY engine ./engine
COPY src ./src
# The commit the image is built from, for --version and sluice_build_info (.git is not sent).
ARG SLUICE_COMMIT=unknown
RUN SLUICE_COMMIT=$SLUICE_COMMIT npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

# Run: the slim image with the compiled build only (no TypeScript, no tsx), a non-root
# user and one volume for the log.
FROM node:20-bookworm-slim
# No SLUICE_HOST here: without auth, sluice keeps to 127.0.0.1 (unreachable from outside
# the container) unless told otherwise. Give it an auth key (SLUICE_AUTH_SECRET or
# SLUICE_AUTH_PUBLIC_KEY: it then listens on 0.0.0.0), or say SLUICE_HOST=0.0.0.0 explicitly
# to serve without auth. Configure the image with SLUICE_* variables: the health check
# reads them too (flags given after the image name are not seen by it).
ENV NODE_ENV=production \
    SLUICE_DATA_DIR=/data
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json ./
COPY --from=build --chown=node:node /app/bin ./bin
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/native/sendfile/build/Release/sendfile.node ./native/sendfile/build/Release/sendfile.node
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 8081 9092
# `sluice health` asks GET /healthz on the port the configuration gives (SLUICE_PORT, else 8080).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "bin/sluice.js", "health"]
# node runs as PID 1 here and sluice handles SIGTERM itself: stop accepting, flush, fsync, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/sluice.js"]
CMD ["serve"]
