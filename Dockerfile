# dstack-app, the server (and the GitHub App when its variables are set), as an image.
#
#   docker build -t dstack-app .
#   docker run -p 3000:3000 -v dstack-data:/data -e APP_ID -e WEBHOOK_SECRET \
#     -e PRIVATE_KEY_PATH=/keys/app.pem -v $PWD/app.pem:/keys/app.pem:ro dstack-app
#
# BASE is the Node.js 20 image both stages start from: any image with `node` and `npm` on PATH and
# a POSIX shell (the tests build one from this machine's node, since no registry can be reached).
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
WORKDIR /app
COPY . .
# `npm ci` builds through `prepare`; a context that brings its node_modules (no registry in
# reach) is built as is. Then only the production dependencies are kept.
RUN if [ -d node_modules ]; then npm run build; else npm ci --no-audit --no-fund; fi \
 && npm prune --omit=dev --no-audit --no-fund \
 && rm -rf dist/bench dist/cli-bundle/*.map

FROM ${BASE}
WORKDIR /app
ENV NODE_ENV=production HOST=0.0.0.0 PORT=3000 DSTACK_DATA_DIR=/data
COPY --from=build /app/package.json /app/app.yml ./
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/node_modules ./node_modules
# Not root: uid 1000 (`node` in the official images), owning only its data folder.
RUN mkdir -p /data && chown 1000:1000 /data
USER 1000:1000
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# The node option of bin/dstack-app.js's first line, which `node FILE` does not read.
ENTRYPOINT ["node", "--initial-old-space-size=64", "/app/bin/dstack-app.js"]
