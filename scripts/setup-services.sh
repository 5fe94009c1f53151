#!/usr/bin/env bash
# Makes Postgres 15 with pgvector available on 127.0.0.1:5432 (trust auth, user postgres).
# Idempotent: installs Debian packages only when missing, builds pgvector from Debian's trixie
# source package (not packaged for bookworm) only when the extension is absent, starts the
# cluster only when it is down. Used by .ci/run and by developers on a fresh machine.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log() { printf '\n== %s\n' "$*"; }
PG_BIN=/usr/lib/postgresql/15/bin
apt_updated=0
apt_install() {
  if [ "$apt_updated" = 0 ]; then $SUDO apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

if [ ! -x "$PG_BIN/postgres" ]; then
  log "installing postgresql-15"
  apt_install postgresql-15 postgresql-client-15
fi

if [ ! -f /usr/share/postgresql/15/extension/vector.control ]; then
  log "building pgvector for Postgres 15 from Debian's trixie source package"
  apt_install postgresql-server-dev-15 dpkg-dev build-essential
  URI=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  URI=${URI:-http://deb.debian.org/debian}
  printf 'Types: deb-src\nURIs: %s\nSuites: trixie\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$URI" | $SUDO tee /etc/apt/sources.list.d/trixie-src.sources >/dev/null
  $SUDO apt-get update -qq
  work=$(mktemp -d)
  (cd "$work" && apt-get source -qq pgvector >/dev/null 2>&1)
  src=$(find "$work" -maxdepth 1 -type d -name 'pgvector-*' | head -1)
  $SUDO make -s -C "$src" PG_CONFIG=$PG_BIN/pg_config OPTFLAGS="" >/dev/null
  $SUDO make -s -C "$src" PG_CONFIG=$PG_BIN/pg_config install >/dev/null
  rm -rf "$work"
fi

if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting Postgres 15"
  if [ -d /etc/postgresql/15/main ]; then
    $SUDO pg_ctlcluster --skip-systemctl-redirect 15 main start || true
  fi
  if ! pg_isready -q -h 127.0.0.1 -p 5432; then
    # No Debian cluster: make one with trust auth on 127.0.0.1.
    data=/var/lib/postgresql/stepwise-ci
    if [ ! -f "$data/PG_VERSION" ]; then
      $SUDO mkdir -p "$data" && $SUDO chown postgres:postgres "$data"
      $SUDO -u postgres $PG_BIN/initdb -D "$data" -A trust -U postgres >/dev/null
    fi
    $SUDO -u postgres $PG_BIN/pg_ctl -D "$data" -o "-c listen_addresses=127.0.0.1 -p 5432 -k /tmp" -l /tmp/stepwise-postgres.log -w start >/dev/null
  fi
  for _ in $(seq 1 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
pg_isready -h 127.0.0.1 -p 5432

# Redis 7 on 127.0.0.1:6379 for the queue and the bus (@stepwise/redis). It holds derived state
# only (the reconciler rebuilds it from Postgres), so it runs without persistence. Installs
# Debian's redis-server only when missing, starts it only when nothing answers.
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null)" = "PONG" ]; }
# The binary is needed even when a server already answers: outage tests start private ones.
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  log "installing redis-server"
  apt_install redis-server redis-tools
fi
if ! redis_up; then
  # The package's own service may have started it meanwhile.
  if ! redis_up; then
    log "starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --logfile /tmp/stepwise-redis.log
  fi
  for _ in $(seq 1 30); do redis_up && break; sleep 1; done
fi
redis-cli -h 127.0.0.1 -p 6379 ping
