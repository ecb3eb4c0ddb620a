# syntax=docker/dockerfile:1
# Build: the full Node 20 image has the compiler and Python that node-gyp needs for the
# native pieces (mmap-io, lz4, the sendfile addon).
FROM node:20-bookworm AS build
WORKDIR /app
COPY package.json package-lock.json ./
COPY vendor ./vendor
COPY native ./native
# npm ci runs the root install script, which builds the sendfile addon.
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run build --if-present && npm prune --omit=dev --no-audit --no-fund

# Run: the slim image, the built tree, a non-root user and one volume for the log.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    SLUICE_DATA_DIR=/data \
    SLUICE_HOST=0.0.0.0
WORKDIR /app
COPY --from=build --chown=node:node /app /app
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 8080 8081 9092
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# node runs as PID 1 here and sluice handles SIGTERM itself: stop accepting, flush, fsync, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/sluice.js"]
CMD ["serve"]
