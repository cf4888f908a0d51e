#!/bin/sh
### BEGIN INIT INFO
# Provides:          ereceipt-auth
# Required-Start:    $local_fs $network $syslog
# Required-Stop:     $local_fs $syslog
# Default-Start:     2 3 4 5
# Default-Stop:      0 1 6
# Short-Description: eReceipt POS authentication with the tax authority
# Description:       Logs the terminal in at boot (bounded wait), then keeps
#                    /run/ereceipt-auth/token.json valid with a supervised `run`.
### END INIT INFO
#
# SysV and BusyBox init script: install as /etc/init.d/ereceipt-auth.
# Settings: /etc/default/ereceipt-auth (or the environment) may set any of these.

NODE=${NODE:-/usr/bin/node}
DIR=${DIR:-/usr/lib/ereceipt-auth}
CONFIG=${CONFIG:-/etc/ereceipt-auth/config.json}
SERVICE_USER=${SERVICE_USER-ereceipt}
RUN_DIR=${RUN_DIR:-/run/ereceipt-auth}
PIDFILE=${PIDFILE:-/run/ereceipt-auth.pid}
# The longest the boot may wait for the identity service; the terminal's boot goes
# on after it, and the supervised `run` keeps trying.
BOOT_WAIT=${BOOT_WAIT:-30}
RESPAWN_DELAY=${RESPAWN_DELAY:-5}
[ -r /etc/default/ereceipt-auth ] && . /etc/default/ereceipt-auth

PROGRAM="$DIR/ereceipt-auth.js"

# Runs the program as the service user, or as is when SERVICE_USER is empty.
# `exec` keeps one process, so that signals reach node itself.
as_user() {
  if [ -z "$SERVICE_USER" ] || [ "$(id -un)" = "$SERVICE_USER" ]; then
    exec "$NODE" "$PROGRAM" --config "$CONFIG" "$@"
  fi
  exec su -s /bin/sh -c 'exec "$0" "$@"' "$SERVICE_USER" -- "$NODE" "$PROGRAM" --config "$CONFIG" "$@"
}

running() {
  [ -r "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

say() {
  echo "ereceipt-auth: $*"
  command -v logger >/dev/null 2>&1 && logger -t ereceipt-auth -- "$*"
  return 0
}

# Keeps `run` going: restarted after RESPAWN_DELAY if it ends; TERM stops it with
# it, HUP is passed on (reload).
supervise() {
  child=
  stopping=
  trap 'stopping=1; [ -n "$child" ] && kill -TERM "$child" 2>/dev/null' TERM INT
  trap '[ -n "$child" ] && kill -HUP "$child" 2>/dev/null' HUP
  while [ -z "$stopping" ]; do
    (as_user run) &
    child=$!
    # `wait` returns early when a trapped signal arrives: wait again until the child is gone.
    while kill -0 "$child" 2>/dev/null; do wait "$child"; done
    [ -n "$stopping" ] && break
    say "run ended; restarting in $RESPAWN_DELAY s"
    sleep "$RESPAWN_DELAY" &
    wait $!
  done
}

start() {
  if running; then
    say "already running (pid $(cat "$PIDFILE"))"
    return 0
  fi
  mkdir -p "$RUN_DIR"
  chmod 0700 "$RUN_DIR"
  [ -n "$SERVICE_USER" ] && chown "$SERVICE_USER" "$RUN_DIR" 2>/dev/null
  # Bounded twice: --wait limits the retries, and `timeout` the whole command
  # (device reads included), so the terminal's boot is never held longer.
  if command -v timeout >/dev/null 2>&1; then
    timeout "$((BOOT_WAIT + 5))" sh "$0" boot
    status=$?
  else
    (as_user boot --wait "$BOOT_WAIT")
    status=$?
  fi
  [ "$status" -eq 0 ] || say "boot did not get a token (status $status); the service keeps trying"
  supervise </dev/null >/dev/null 2>&1 &
  echo $! >"$PIDFILE"
  say "started (pid $!)"
}

stop() {
  if ! running; then
    say "not running"
    rm -f "$PIDFILE"
    return 0
  fi
  pid=$(cat "$PIDFILE")
  kill -TERM "$pid"
  i=0
  while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 10 ]; do
    sleep 1
    i=$((i + 1))
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "did not stop within 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$PIDFILE"
  say "stopped"
}

case "$1" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  reload | force-reload)
    running && kill -HUP "$(cat "$PIDFILE")" && say "reloading" ;;
  status)
    if running; then echo "ereceipt-auth is running (pid $(cat "$PIDFILE"))"; exit 0; fi
    echo "ereceipt-auth is not running"
    exit 3
    ;;
  boot) as_user boot --wait "$BOOT_WAIT" ;;
  *)
    echo "Usage: $0 {start|stop|restart|reload|status}" >&2
    exit 64
    ;;
esac
