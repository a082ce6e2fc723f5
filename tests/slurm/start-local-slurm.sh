#!/usr/bin/env bash
# A real one-node SLURM on this machine, for the workflow's SLURM test (see
# ../shared/reference/local-slurm-notes.md for the facts behind every setting).
#
#   tests/slurm/start-local-slurm.sh          install if needed, (re)start if needed, wait for the node
#   tests/slurm/start-local-slurm.sh stop     stop the daemons this script started
#   tests/slurm/start-local-slurm.sh status   exit 0 when the node is up
#
# Idempotent: with the cluster already running on an unchanged configuration it only checks the
# node. Needs root (Debian packages, daemons); no systemd is needed (daemons are started directly).
set -euo pipefail

PARTITION=${SLURM_TEST_PARTITION:-local}
CONF_DIR=/etc/slurm
RUN=/run/imsct-slurm
mkdir -p "$RUN"

log() { echo "[local-slurm] $*" >&2; }

stop_pidfile() {  # stop the process named in a pidfile, if alive
    local f=$1
    local pid
    pid=$(cat "$f" 2>/dev/null || true)
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$f"
}

stop() {
    stop_pidfile "$RUN/slurmd.pid"
    stop_pidfile "$RUN/slurmctld.pid"
    stop_pidfile "$RUN/munged.pid"
    log "stopped"
}

node_idle() { sinfo -h -N -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; }

case "${1:-start}" in
    stop) stop; exit 0 ;;
    status) node_idle; exit $? ;;
    start) ;;
    *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

[[ $(id -u) -eq 0 ]] || { echo "error: $0 needs root (it installs packages and starts daemons)" >&2; exit 1; }

# 1. Packages (Debian 12: SLURM 22.05, munge 0.5.15). Services must not start from postinst.
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurmctld, slurmd, slurm-client, munge"
    added_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && added_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends slurmctld slurmd slurm-client munge >/dev/null
    [[ $added_policy -eq 1 ]] && rm -f /usr/sbin/policy-rc.d
fi

# 2. Configuration from this machine (hostname, CPUs and topology from `slurmd -C`; 90% of its memory,
#    never more than it measures, or the node goes INVAL).
HOST=$(hostname -s)
HW=$(slurmd -C | head -1)
field() { sed -n "s/.*\b$1=\([^ ]*\).*/\1/p" <<<"$HW"; }
CPUS=$(field CPUs); MEM=$(field RealMemory)
MEM=$(( MEM * 9 / 10 ))
TOPO="Boards=$(field Boards) SocketsPerBoard=$(field SocketsPerBoard) CoresPerSocket=$(field CoresPerSocket) ThreadsPerCore=$(field ThreadsPerCore)"
mkdir -p "$CONF_DIR" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
NEW_CONF=$(cat <<CONF
# Written by tests/slurm/start-local-slurm.sh: one node, this machine, for tests.
ClusterName=localci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# no cgroups here (gVisor, no systemd): Linux process tracking, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# squeue-based job status needs finished jobs visible for >= 3x the plugin's first-check delay
MinJobAge=300
# requests the node can never satisfy fail at sbatch instead of pending forever
EnforcePartLimits=ALL
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=${RUN}/slurmctld.pid
SlurmdPidFile=${RUN}/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=${CPUS} ${TOPO} RealMemory=${MEM} State=UNKNOWN
PartitionName=${PARTITION} Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
CONF
)
changed=0
if [[ ! -f $CONF_DIR/slurm.conf ]] || [[ "$(cat $CONF_DIR/slurm.conf)" != "$NEW_CONF" ]]; then
    printf '%s\n' "$NEW_CONF" > "$CONF_DIR/slurm.conf"
    changed=1
fi

# 3. munge: a key, its run directory, the daemon (as the munge user).
if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
    cp /run/munge/munged.pid "$RUN/munged.pid" 2>/dev/null || pgrep -x munged > "$RUN/munged.pid"
fi

alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# 4. slurmctld (-c: drop the state of an earlier run) and slurmd; restarted on a changed config.
if [[ $changed -eq 1 ]]; then
    stop_pidfile "$RUN/slurmd.pid"
    stop_pidfile "$RUN/slurmctld.pid"
fi
if ! alive "$RUN/slurmctld.pid"; then
    log "starting slurmctld"
    slurmctld -c
fi
if ! alive "$RUN/slurmd.pid"; then
    log "starting slurmd"
    slurmd
fi

# 5. Wait until the node can take jobs.
for _ in $(seq 60); do
    if node_idle; then
        if [[ $changed -eq 1 ]]; then log "node ${HOST} up: ${CPUS} CPUs, ${MEM} MB, partition ${PARTITION}"; fi
        exit 0
    fi
    state=$(sinfo -h -N -o '%T' 2>/dev/null || true)
    if [[ $state == *drain* || $state == *inval* ]]; then
        scontrol update NodeName="$HOST" State=RESUME 2>/dev/null || true
    fi
    sleep 0.5
done
echo "error: the SLURM node did not come up; see /var/log/slurm/slurmctld.log and slurmd.log" >&2
sinfo -N -l >&2 || true
exit 1
