#!/usr/bin/env bash
# Makes Docker usable for `make docker-test` (deploy/dockertest): the docker
# CLI and docker-compose (v1) from Debian's apt if missing, and a running
# daemon. If the daemon does not answer, it is started in the background
# (log in $DOCKERD_LOG) and polled for up to 60 s. Exits non-zero with the
# reason when Docker cannot be made to work: the container tests are never
# skipped silently.
set -euo pipefail

DOCKERD_LOG=${DOCKERD_LOG:-/tmp/zabkeeper-ci-dockerd.log}

apt_install() {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

if ! command -v docker >/dev/null 2>&1 || ! command -v dockerd >/dev/null 2>&1; then
  echo "ci/docker: installing docker.io"
  apt_install docker.io
fi
if ! command -v docker-compose >/dev/null 2>&1; then
  echo "ci/docker: installing docker-compose"
  apt_install docker-compose
fi

if ! docker info >/dev/null 2>&1; then
  echo "ci/docker: the Docker daemon does not answer; starting dockerd (log: $DOCKERD_LOG)"
  nohup dockerd >"$DOCKERD_LOG" 2>&1 &
  up=""
  for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
      up=yes
      break
    fi
    sleep 1
  done
  if [ -z "$up" ]; then
    echo "ci/docker: FAILED: dockerd did not answer within 60 s; the container tests cannot run." >&2
    echo "ci/docker: last lines of $DOCKERD_LOG:" >&2
    tail -n 30 "$DOCKERD_LOG" >&2 || true
    exit 1
  fi
fi
echo "ci/docker: Docker $(docker info --format '{{.ServerVersion}}'), $(docker-compose version --short 2>/dev/null || echo 'docker-compose ?')"
