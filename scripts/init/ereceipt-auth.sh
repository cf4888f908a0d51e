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

# Runs the program as the service user, or as is when SERVICE_USER is empty. The
# tools that replace themselves with node come first (setpriv, chpst), so that
# signals (SIGHUP for reload) reach node itself; util-linux su stays in between.
as_user() {
  if [ -z "$SERVICE_USER" ] || [ "$(id -un)" = "$SERVICE_USER" ]; then
    exec "$NODE" "$PROGRAM" --config "$CONFIG" "$@"
  elif command -v setpriv >/dev/null 2>&1; then
    exec setpriv --reuid="$SERVICE_USER" --regid="$(id -g "$SERVICE_USER")" --init-groups "$NODE" "$PROGRAM" --config "$CONFIG" "$@"
  elif command -v chpst >/dev/null 2>&1; then
    exec chpst -u "$SERVICE_USER" "$NODE" "$PROGRAM" --config "$CONFIG" "$@"
  fi
  # "--": util-linux su reorders options, so without it the program's own --config
  # would be taken for su's.
  exec su -s /bin/sh -c 'exec "$0" "$@"' -- "$SERVICE_USER" "$NODE" "$PROGRAM" --config "$CONFIG" "$@"
}

# Sends what `run` says (one line per event, "<N>" priority first) to syslog.
log_to_syslog() {
  if command -v logger >/dev/null 2>&1; then
    if logger --help 2>&1 | grep -q -- --prio-prefix; then
      exec logger -t ereceipt-auth --prio-prefix
    fi
    exec logger -t ereceipt-auth
  fi
  exec cat >/dev/null
}

# Waits for a pid, killing it after SECONDS, without relying on timeout(1) (whose
# options differ between coreutils and old BusyBox).
wait_bounded() {
  pid=$1
  seconds=$2
  (
    i=0
    while [ "$i" -lt "$seconds" ] && kill -0 "$pid" 2>/dev/null; do
      sleep 1
      i=$((i + 1))
    done
    kill -TERM "$pid" 2>/dev/null
  ) &
  watcher=$!
  wait "$pid"
  status=$?
  kill "$watcher" 2>/dev/null
  return "$status"
}

# Signals the node process of `run`: the child itself where setpriv or chpst replaced
# themselves with node, else the child's own child, since util-linux su stays in
# between, does not pass SIGHUP on, and waits 2 s after passing SIGTERM on.
signal_run() {
  [ -n "$child" ] || return 0
  inner=$(grep -l "^PPid:[[:space:]]*$child\$" /proc/[0-9]*/status 2>/dev/null | sed -n 's|^/proc/\([0-9]*\)/status$|\1|p')
  kill -"$1" ${inner:-$child} 2>/dev/null
}

running() {
  [ -r "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

say() {
  echo "ereceipt-auth: $*"
  command -v logger >/dev/null 2>&1 && logger -t ereceipt-auth -- "$*"
  return 0
}

# Keeps `run` going: restarted if it ends, after RESPAWN_DELAY doubling up to 5
# minutes (back to RESPAWN_DELAY once a run lasted a minute); not restarted after
# a usage or configuration error (64, 78), which only a person can mend. TERM stops
# it with `run`; HUP is passed on (reload).
supervise() {
  child=
  stopping=
  delay=$RESPAWN_DELAY
  trap 'stopping=1; signal_run TERM' TERM INT
  trap 'signal_run HUP' HUP
  # run's log goes through a FIFO to syslog; holding it open here keeps the reader
  # alive across restarts of run.
  fifo="$RUN_DIR/.log"
  rm -f "$fifo"
  mkfifo -m 0600 "$fifo"
  exec 3<>"$fifo"
  (log_to_syslog <"$fifo") &
  reader=$!
  while [ -z "$stopping" ]; do
    started=$(date +%s)
    (as_user run 2>"$fifo") &
    child=$!
    echo "$child" >"$PIDFILE.run"
    # `wait` returns early when a trapped signal arrives: wait again until the child is gone.
    status=0
    while kill -0 "$child" 2>/dev/null; do
      wait "$child"
      status=$?
    done
    child=
    rm -f "$PIDFILE.run"
    [ -n "$stopping" ] && break
    if [ "$status" -eq 64 ] || [ "$status" -eq 78 ]; then
      say "run ended with status $status (usage or configuration): not restarted; fix it, then: $0 restart"
      break
    fi
    [ $(($(date +%s) - started)) -ge 60 ] && delay=$RESPAWN_DELAY
    say "run ended (status $status); restarting in $delay s"
    sleep "$delay" &
    wait $!
    delay=$((delay * 2))
    [ "$delay" -gt 300 ] && delay=300
  done
  exec 3>&-
  kill "$reader" 2>/dev/null
  rm -f "$fifo"
}

start() {
  if running; then
    say "already running (pid $(cat "$PIDFILE"))"
    return 0
  fi
  mkdir -p "$RUN_DIR"
  chmod 0700 "$RUN_DIR"
  [ -n "$SERVICE_USER" ] && chown "$SERVICE_USER" "$RUN_DIR" 2>/dev/null
  # Bounded twice: --wait limits the retries, and the watcher the whole command
  # (device reads included), so the terminal's boot is never held longer.
  (as_user boot --wait "$BOOT_WAIT") &
  wait_bounded $! "$((BOOT_WAIT + 5))"
  status=$?
  [ "$status" -eq 0 ] || say "boot did not get a token (status $status); the service keeps trying"
  # A subshell, not the function itself: the shell would keep copies of the caller's
  # output (saved for after the redirection) open in the background process, and
  # whoever captured `start`'s output (dpkg, an ssh session) would wait for them.
  (supervise) </dev/null >/dev/null 2>&1 &
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
  # Look every 0.1 s (so a stop takes as long as run needs, not a whole second more),
  # for 10 s in all; a sleep without fractions (a POSIX-only one) looks every second.
  waited=0
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
    if sleep 0.1 2>/dev/null; then
      waited=$((waited + 1))
    else
      sleep 1
      waited=$((waited + 10))
    fi
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "did not stop within 10 s; killing it"
    kill -KILL "$pid" 2>/dev/null
    [ -r "$PIDFILE.run" ] && kill -KILL "$(cat "$PIDFILE.run")" 2>/dev/null
  fi
  rm -f "$PIDFILE" "$PIDFILE.run"
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
