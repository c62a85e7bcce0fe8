#!/usr/bin/env bash
# A Slurm cluster on this machine, for tests, benchmarks and trying herd's Slurm paths: one
# controller and $HERD_SLURM_NODES nodes (default 4: herd1 .. herd4) in the default partition
# `debug`, plus two nodes in the partition `faults` for tests that kill a node (so that they
# never take down the nodes other tests run on), each node its own slurmd.
#
#   eval "$(bash scripts/slurm.sh up)"   # install if missing (root), start; prints SLURM_CONF=...
#   bash scripts/slurm.sh status         # is it up? (exit 0 when `srun true` works)
#   bash scripts/slurm.sh down           # stop what `up` started
#
# Idempotent: `up` on a running cluster only checks it and prints the same line. Everything lives
# in $HERD_SLURM_DIR (default /tmp/herd-slurm): slurm.conf, state, spool, logs and pid files;
# clients find the cluster through SLURM_CONF. Each node declares $HERD_SLURM_CPUS cores (default
# 8) and $HERD_SLURM_MEM MB (default 16000), more than this machine may have
# (SlurmdParameters=config_overrides), so that tests can ask for what production nodes have.
# Slurm keeps finished jobs for MinJobAge seconds (1 h): herd reads their state with
# `scontrol show job`, without accounting (no slurmdbd).
set -euo pipefail

DIR="${HERD_SLURM_DIR:-/tmp/herd-slurm}"
NODES="${HERD_SLURM_NODES:-4}"
TOTAL=$((NODES + 2))
CPUS="${HERD_SLURM_CPUS:-8}"
MEM="${HERD_SLURM_MEM:-16000}"
CONF="$DIR/slurm.conf"
NODE="$(hostname -s)"

say() { echo "slurm.sh: $*" >&2; }

install_missing() {
  local missing=()
  command -v slurmctld >/dev/null || missing+=(slurmctld)
  command -v slurmd >/dev/null || missing+=(slurmd)
  command -v sbatch >/dev/null || missing+=(slurm-client)
  command -v munged >/dev/null || missing+=(munge)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -ne 0 ]; then
    say "missing ${missing[*]}: install them (sudo apt-get install slurmctld slurmd slurm-client munge) or run as root"
    exit 1
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
}

write_conf() {  # to $CONF.new: up() compares it with the running cluster's
  mkdir -p "$DIR/state"
  for n in $(seq 1 "$TOTAL"); do mkdir -p "$DIR/spool/herd$n"; done
  cat >"$CONF.new" <<EOF
# single-node test cluster written by herd's scripts/slurm.sh (see its header)
ClusterName=herd
SlurmctldHost=$NODE
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.%n.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.%n.log
# processes tracked by their parent links, no cgroups: works in a container
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# start a job as soon as it is submitted (measured: sbatch -> start <= 1 s)
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# a job that names no memory gets this much per core, not the whole node
DefMemPerCPU=500
# the node may declare more cores and memory than the machine has
SlurmdParameters=config_overrides
ReturnToService=2
# a node whose slurmd stops is down (and its jobs NODE_FAIL) after 10 s, not 5 min
SlurmdTimeout=10
# no accounting: finished jobs stay visible to scontrol for an hour
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MinJobAge=3600
KillWait=5
InactiveLimit=0
# several nodes on this one machine: one slurmd each (slurmd -N), on its own port
NodeName=herd[1-$TOTAL] NodeHostname=$NODE NodeAddr=127.0.0.1 Port=[17001-$((17000 + TOTAL))] CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=herd[1-$NODES] Default=YES MaxTime=INFINITE State=UP
PartitionName=faults Nodes=herd[$((NODES + 1))-$TOTAL] MaxTime=INFINITE State=UP
EOF
}

alive() { [ -f "$1" ] && [ -e "/proc/$(cat "$1")" ] && ! grep -q ') Z ' "/proc/$(cat "$1")/stat"; }

works() {
  SLURM_CONF="$CONF" timeout 20 srun --nodes="$NODES" --time=1 true >/dev/null 2>&1 &&
    SLURM_CONF="$CONF" timeout 20 srun --partition=faults --nodes=2 --time=1 true >/dev/null 2>&1
}

slurmds_alive() {
  for n in $(seq 1 "$TOTAL"); do alive "$DIR/slurmd.herd$n.pid" || return 1; done
}

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
  [ -f /etc/munge/munge.key ] || mungekey --create
  mkdir -p /run/munge && chown munge:munge /run/munge 2>/dev/null || true
  runuser -u munge -- munged 9>&-
  pgrep -u munge -n munged >"$DIR/munged.pid"
}

up() {
  install_missing
  mkdir -p "$DIR"
  write_conf
  if cmp -s "$CONF.new" "$CONF" && alive "$DIR/slurmctld.pid" && slurmds_alive && works; then
    echo "export SLURM_CONF=$CONF"
    return
  fi
  if ! cmp -s "$CONF.new" "$CONF" && alive "$DIR/slurmctld.pid"; then
    say "slurm.conf changed: restarting the cluster"
    down
  fi
  mv "$CONF.new" "$CONF"
  start_munge
  export SLURM_CONF="$CONF"
  alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF" 9>&-  # the lock stays with this script
  for n in $(seq 1 "$TOTAL"); do
    alive "$DIR/slurmd.herd$n.pid" || slurmd -f "$CONF" -N "herd$n" 9>&-
  done
  for _ in $(seq 1 60); do
    if works; then
      say "up: $NODES node(s) herd1.. (and 2 in partition faults) with $CPUS cores and $MEM MB each, on $NODE (logs in $DIR)"
      echo "export SLURM_CONF=$CONF"
      return
    fi
    scontrol update nodename="herd[1-$TOTAL]" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  say "Slurm did not come up within 30 s: see $DIR/slurmctld.log and $DIR/slurmd.*.log"
  exit 1
}

stop() {  # by the pid a daemon wrote, so that nobody else's process is touched
  local pidfile="$1"
  alive "$pidfile" || { rm -f "$pidfile"; return; }
  local pid
  pid="$(cat "$pidfile")"
  kill "$pid"
  for _ in $(seq 1 50); do
    alive "$pidfile" || break
    sleep 0.1
  done
  alive "$pidfile" && kill -9 "$pid"
  rm -f "$pidfile"
}

down() {
  if alive "$DIR/slurmctld.pid"; then  # jobs first: their slurmstepd would outlive slurmd
    SLURM_CONF="$CONF" scancel --full --quiet --partition=debug,faults 2>/dev/null || true
    for _ in $(seq 1 50); do
      [ -z "$(SLURM_CONF="$CONF" squeue --noheader --states=RUNNING,COMPLETING 2>/dev/null)" ] && break
      sleep 0.1
    done
  fi
  for pidfile in "$DIR"/slurmd.pid "$DIR"/slurmd.*.pid; do [ -e "$pidfile" ] && stop "$pidfile"; done
  stop "$DIR/slurmctld.pid"
  stop "$DIR/munged.pid"  # only when this script started it
  say "down"
}

mkdir -p "$(dirname "$DIR")"
exec 9>"$DIR.lock"
flock 9  # two test runs bringing the cluster up at once start it once

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) works && say "up ($CONF)" || { say "not running"; exit 1; } ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
