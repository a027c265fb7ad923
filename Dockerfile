# syntax=docker/dockerfile:1
# The tally image: one image for both roles. `docker compose` runs it as `tally worker ...` and
# as a one-shot `tally count ...`; nats-server is not in it, because workers and coordinators
# join a server running elsewhere (the `nats` service, or any NATS cluster).

# Build stage: the TypeScript compiler and the other devDependencies live only here.
FROM node:24-bookworm-slim AS build
WORKDIR /app
# Dependencies first, so editing a source file does not invalidate the `npm ci` layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Only what the CLI and the workers run; tests/ and bench/ are not needed in the image.
COPY tsconfig.json ./
COPY bin ./bin
COPY config ./config
COPY shared ./shared
COPY worker ./worker
COPY coordinator ./coordinator
COPY wasm ./wasm
COPY scripts/bundle.mjs ./scripts/
# tsc, the WebAssembly modules, and the bundles bin/tally.js and the worker processes run.
RUN npm run build && npm prune --omit=dev

# Runtime stage: production node_modules and the compiled JavaScript, no compiler, no sources.
FROM node:24-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
# package.json is read at run time for `tally --version`; config/ holds the nats-server config
# the embedded mode uses, kept so `tally` behaves the same in and out of the image.
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY --from=build /app/bin ./bin
COPY --from=build /app/config ./config
COPY --from=build /app/coordinator/dashboard/assets ./coordinator/dashboard/assets
# Nothing in the image needs root; the official image ships the unprivileged `node` user.
USER node
# Exec form, so node (not a shell) receives SIGTERM: `tally worker` finishes the task in hand
# on SIGTERM, which is what `docker compose stop` and scaling down send.
ENTRYPOINT ["node", "/app/bin/tally.js"]
CMD ["--help"]
