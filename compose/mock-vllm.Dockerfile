# The CPU dev stack's stand-in for a vLLM server (compose/dev.yml): tools/mockVllm.ts run by
# scripts/mock-vllm.ts. Built from the repository root; mock-vllm.Dockerfile.dockerignore keeps the
# build context to those two files. TSX_VERSION comes from package.json (scripts/gen-compose.ts).
FROM node:20-slim
ARG TSX_VERSION
WORKDIR /app
RUN test -n "$TSX_VERSION" \
    && npm init -y >/dev/null && npm pkg set type=module \
    && npm install --no-audit --no-fund "tsx@$TSX_VERSION" \
    && npm cache clean --force
COPY tools/mockVllm.ts tools/mockVllm.ts
COPY scripts/mock-vllm.ts scripts/mock-vllm.ts
USER node
EXPOSE 8000
ENTRYPOINT ["node", "--import", "tsx", "scripts/mock-vllm.ts"]
