#!/bin/bash
# Submit a search (genetic or Bayesian; grid and random work too) in ask/tell rounds: each
# round's candidates are evaluated by a job array of N tasks, and the next round is asked by a
# job that waits on that array (afterok). The final step writes the run folder under OUT_DIR.
#
#   deploy/slurm/rounds.sh EXPERIMENT.toml N ROUNDS_DIR [OUT_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exp=$(realpath "${1:?experiment file}")
n=${2:?tasks per round}
dir=$(realpath -m "${3:?rounds folder}")
out=$(realpath -m "${4:-$dir/result}")
mkdir -p "$dir"
job=$(sbatch --parsable --export=ALL "$here/round.sbatch" "$exp" "$n" "$dir" "$out" "$here")
echo "first step: job $job; each round lands in $dir/round-K, the finished search in $out"
