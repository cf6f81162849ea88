# Luster: one image, two roles.
#   web    (default): luster serve --no-worker   — migrate, then the Reflex app and the API on $PORT
#   worker:           luster worker
# Built by Railway for both services (railway.json, railway.worker.json) and by infra/docker-compose.yml.

# Reflex builds its frontend with Node >= 22; take Node and npm from the official image.
FROM node:22-slim AS node

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    # Use the bun installed below instead of Reflex downloading its own.
    REFLEX_USE_SYSTEM_BUN=1 \
    # Fail closed: the image refuses embedded providers unless told it is not production.
    LUSTER_ENV=production \
    LUSTER_DATA_DIR=/app/data \
    PORT=8000

COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
# bun comes from npm, as `make setup` installs it (the npm package ships the binary).
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && npm install -g --no-audit --no-fund --loglevel=error bun@1 \
 && bun --version \
 && useradd --create-home --uid 10001 luster

WORKDIR /app

# Dependencies first, in their own layer: a code change does not reinstall them.
COPY pyproject.toml ./
RUN mkdir -p luster_app worker \
 && touch luster_app/__init__.py worker/__init__.py \
 && pip install . \
 && pip uninstall -y luster \
 && rm -rf luster_app worker build *.egg-info

COPY --chown=luster:luster . .
RUN pip install --no-deps -e . && mkdir -p /app/data && chown luster:luster /app /app/data

USER luster
# Build the Reflex frontend now (bun install + vite build), so a container starts without the network.
RUN reflex export --frontend-only --no-zip --loglevel warning && test -f .web/build/client/index.html

EXPOSE 8000
CMD ["luster", "serve", "--no-worker"]
