# Stepwise: `stepwise start` / `stepwise worker` with your functions.
# Build from the repository root: docker build -t stepwise .
FROM node:20-bookworm-slim AS build
RUN npm i -g pnpm@10.34.9
WORKDIR /app
COPY . .
RUN pnpm install --frozen-lockfile && pnpm build

FROM node:20-bookworm-slim
RUN npm i -g pnpm@10.34.9
WORKDIR /app
COPY --from=build /app /app
ENV NODE_ENV=production
# Mount or copy your functions module and point --functions at it (TypeScript works).
ENTRYPOINT ["node", "/app/apps/cli/bin/stepwise.js"]
CMD ["start", "--host", "0.0.0.0", "--functions", "/app/examples/quickstart/src/functions.ts"]
