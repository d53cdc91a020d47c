#!/bin/sh
# The server image's entrypoint (lambda/server.Dockerfile). SageMaker starts a serving
# container as `docker run IMAGE serve`; ECS runs the image's CMD, which is `serve` too.
# Anything else runs as a command (`docker run IMAGE python -c ...`).
set -eu
if [ "${1:-serve}" = "serve" ]; then
    [ "$#" -gt 0 ] && shift
    exec python -m lens.server --host 0.0.0.0 --port 8080 "$@"
fi
exec "$@"
