#!/bin/bash
# Submit a search as a job array of N shards and its merge, which runs once every shard has
# succeeded (afterok):
#
#   deploy/slurm/submit.sh EXPERIMENT.toml N SHARED_DIR [OUT_DIR] [walk-forward]
#
# Then `tradelab merge --status SHARED_DIR` lists finished and missing shards. SHARED_DIR must
# be a folder every node sees (NFS, Lustre, ...); the data files must be there too, or at the
# same path on every node.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exp=$(realpath "${1:?experiment file}")
n=${2:?number of shards}
shared=$(realpath -m "${3:?shared folder}")
out=$(realpath -m "${4:-$shared/merged}")
cmd=${5:-optimize}
mkdir -p "$shared"
array=$(sbatch --parsable --array=0-$((n - 1)) "$here/shard.sbatch" "$exp" "$shared" "$cmd")
merge=$(sbatch --parsable --dependency=afterok:"$array" "$here/merge.sbatch" "$shared" "$out")
echo "shards: job $array (array 0-$((n - 1))); merge: job $merge -> $out"
