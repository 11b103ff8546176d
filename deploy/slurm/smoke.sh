#!/bin/bash
# A real one-node Slurm cluster on localhost, a real job array of a bundled sweep, and its merge
# checked against the same search on one machine. Needs root and Debian's packages (slurm-wlm,
# munge); not part of CI (`tests/shard.rs` runs the same split with plain processes there).
#
#   sudo deploy/slurm/smoke.sh [SHARDS]       # default 3; leaves the cluster running
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
n=${1:-3}
work=${SMOKE_DIR:-/tmp/tradelab-slurm-smoke}

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
cargo build --release -q --bin tradelab
export TRADELAB="$repo/target/release/tradelab"

# munge: one key, the daemon in the background.
mkdir -p /etc/munge /var/run/munge /var/lib/munge /var/log/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
chown -R munge:munge /etc/munge /var/run/munge /var/lib/munge /var/log/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
pgrep -x munged >/dev/null || su -s /bin/sh munge -c munged 2>/dev/null || munged --force

# slurm: this host is the controller and the one compute node, all its CPUs and memory.
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512 ))
conf_dir=/etc/slurm
[ -d /etc/slurm-llnl ] && [ ! -d /etc/slurm ] && conf_dir=/etc/slurm-llnl
mkdir -p "$conf_dir" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
cat > "$conf_dir/slurm.conf" <<EOF
ClusterName=smoke
SlurmctldHost=$host
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=/var/run/slurmctld.pid
SlurmdPidFile=/var/run/slurmd.pid
SlurmdSpoolDir=/var/spool/slurmd
StateSaveLocation=/var/spool/slurmctld
SlurmUser=root
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=smoke Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd
for _ in $(seq 30); do sinfo -h -o %T 2>/dev/null | grep -qE 'idle|mixed|alloc' && break; sleep 1; done
scontrol update nodename="$host" state=resume 2>/dev/null || true
sinfo

# The bundled grid: the 4,950-pair sweep when ../shared is there, else a grid on bundled bars.
exp=experiments/sma_sweep.toml
[ -e ../shared/bench/synthetic_100k_ohlcv.csv ] || exp=experiments/quickstart.toml
rm -rf "$work"
mkdir -p "$work"
"$TRADELAB" optimize "$exp" --out "$work/single" --quiet
# Submitted from the work folder: the jobs' output files land there.
jobs=$(cd "$work" && "$repo/deploy/slurm/submit.sh" "$repo/$exp" "$n" "$work/shards" "$work/merged")
echo "$jobs"
merge_job=$(echo "$jobs" | sed -n 's/.*merge: job \([0-9]*\).*/\1/p')
while squeue -h -j "$merge_job" 2>/dev/null | grep -q .; do sleep 2; done
sacct -n -X -o JobID,JobName,State,Elapsed 2>/dev/null || true
"$TRADELAB" merge --status "$work/shards"

# The merged folder against the single-machine one (durations aside).
single=$(ls -d "$work"/single/*/* | head -1)
merged=$(ls -d "$work"/merged/*/* | head -1)
strip() { # file: without trials.csv's duration_ms column and optimize.json's seconds
  case "$1" in
    *.json) grep -v '"seconds"' "$1" ;;
    *trials.csv) awk -F, 'NR==1{for(i=1;i<=NF;i++) if($i=="duration_ms") d=i} {s=""; for(i=1;i<=NF;i++) if(i!=d) s=s (s==""?"":",") $i; print s}' "$1" ;;
    *) cat "$1" ;;
  esac
}
status=0
for f in trials.csv trial_blocks.csv best.toml optimize.json top_equity.csv; do
  if cmp -s <(strip "$single/$f") <(strip "$merged/$f"); then echo "same: $f"; else echo "DIFFERS: $f"; status=1; fi
done
echo "trials: $(($(wc -l < "$merged/trials.csv") - 1)) merged from $n shards"
exit $status
