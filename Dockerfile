# gfs: one image for every process (gfs master | chunkserver | gateway, and gfsctl).
# Build: docker build -t gfs:dev .
#
# Reproducible: the base is pinned by digest (the tag is only for people; bump both
# together, deliberately), dependencies come from package-lock.json through `npm ci`, and
# the code generator (buf, ts-proto) runs from node_modules, so the build needs only the
# npm registry. The final image holds the compiled code and the production dependencies
# only (no TypeScript, buf or sources) and runs as uid 1000 (the image's `node` user).

# 1. Compile: every dependency, proto generation, tsc.
FROM node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json buf.yaml buf.gen.yaml ./
COPY proto ./proto
COPY src ./src
COPY cli ./cli
COPY test ./test
COPY bench ./bench
COPY scripts ./scripts
RUN npm run build && chmod 0755 dist/cli/gfs.js dist/cli/gfsctl.js

# 2. Production dependencies alone, from the same lockfile.
FROM node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0 AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

# 3. Runtime: owned by root, read-only for the process (runs with readOnlyRootFilesystem).
FROM node:20-bookworm-slim@sha256:2cf067cfed83d5ea958367df9f966191a942351a2df77d6f0193e162b5febfc0
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps /src/package.json ./
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN ln -s /app/dist/cli/gfs.js /usr/local/bin/gfs && ln -s /app/dist/cli/gfsctl.js /usr/local/bin/gfsctl \
 && mkdir -p /data && chown 1000:1000 /data
USER 1000:1000
VOLUME /data
ENTRYPOINT ["node", "/app/dist/cli/gfs.js"]
CMD ["--help"]
