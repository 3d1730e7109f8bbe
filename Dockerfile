# gfs: one image for every process (gfs master | chunkserver | gateway, and gfsctl).
# Build: docker build -t gfs:dev .
FROM node:20-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json buf.yaml buf.gen.yaml ./
COPY proto ./proto
COPY src ./src
COPY cli ./cli
COPY test ./test
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
RUN ln -s /app/dist/cli/gfs.js /usr/local/bin/gfs && ln -s /app/dist/cli/gfsctl.js /usr/local/bin/gfsctl \
 && chmod +x /app/dist/cli/gfs.js /app/dist/cli/gfsctl.js \
 && mkdir -p /data && chown node:node /data
USER node
VOLUME /data
ENTRYPOINT ["node", "/app/dist/cli/gfs.js"]
CMD ["--help"]
