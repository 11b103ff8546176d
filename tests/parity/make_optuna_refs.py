"""Reference numbers for the optimizers' sample efficiency, made by Optuna itself.

Optuna's samplers minimize two standard test functions on the unit cube, exactly as
benches/common/test_functions.rs states them for tradelab: Branin (2-D, optimum 0.397887) and
Hartmann-6 (6-D, optimum -3.32237). For each sampler and seed 0..9, 100 trials; the best value
after n trials, median over the 10 seeds, is written to refs/optuna.csv (problem, sampler, n,
median_best), with the versions in refs/optuna_versions.txt.

Samplers: TPE as Optuna runs it by default (TPESampler(seed); multivariate in Optuna 5), TPE
with each parameter on its own (multivariate=False), Optuna's Gaussian-process sampler
(GPSampler, with torch: the counterpart of tradelab's Bayesian search), CMA-ES (CmaEsSampler,
with the cmaes package) and random search.

Usage (see README.md): python make_optuna_refs.py [out_dir=refs]
"""
import csv
import math
import os
import sys
import warnings

import numpy as np
import optuna

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, 'refs')
optuna.logging.set_verbosity(optuna.logging.WARNING)
warnings.filterwarnings('ignore')

CHECKPOINTS = [20, 30, 40, 60, 100]
SEEDS = range(10)
BUDGET = 100


def branin(u):
    x1, x2 = -5.0 + 15.0 * u[0], 15.0 * u[1]
    pi = math.pi
    return (x2 - 5.1 / (4 * pi * pi) * x1 * x1 + 5.0 / pi * x1 - 6.0) ** 2 + 10.0 * (1 - 1 / (8 * pi)) * math.cos(x1) + 10.0


A = [1.0, 1.2, 3.0, 3.2]
AA = [[10.0, 3.0, 17.0, 3.5, 1.7, 8.0], [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
      [3.0, 3.5, 1.7, 10.0, 17.0, 8.0], [17.0, 8.0, 0.05, 10.0, 0.1, 14.0]]
P = [[0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886], [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
     [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650], [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381]]


def hartmann6(x):
    return -sum(A[i] * math.exp(-sum(AA[i][j] * (x[j] - P[i][j]) ** 2 for j in range(6))) for i in range(4))


PROBLEMS = [('branin', branin, 2), ('hartmann6', hartmann6, 6)]
SAMPLERS = {
    'tpe': lambda seed: optuna.samplers.TPESampler(seed=seed),
    'tpe_independent': lambda seed: optuna.samplers.TPESampler(seed=seed, multivariate=False),
    'gp': lambda seed: optuna.samplers.GPSampler(seed=seed),
    'cmaes': lambda seed: optuna.samplers.CmaEsSampler(seed=seed),
    'random': lambda seed: optuna.samplers.RandomSampler(seed=seed),
}


def best_after(f, d, sampler):
    study = optuna.create_study(direction='minimize', sampler=sampler)
    study.optimize(lambda t: f([t.suggest_float(f'x{j}', 0.0, 1.0) for j in range(d)]), n_trials=BUDGET)
    vals = [t.value for t in study.trials]
    return [min(vals[:c]) for c in CHECKPOINTS]


def main():
    rows = []
    for name, f, d in PROBLEMS:
        for sname, make in SAMPLERS.items():
            per_seed = np.array([best_after(f, d, make(seed)) for seed in SEEDS])
            med = np.median(per_seed, axis=0)
            rows.extend((name, sname, c, repr(float(m))) for c, m in zip(CHECKPOINTS, med))
            print(name, sname, ' '.join(f'{m:.4f}' for m in med), file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, 'optuna.csv'), 'w', newline='') as fh:
        w = csv.writer(fh, lineterminator='\n')
        w.writerow(['problem', 'sampler', 'n', 'median_best'])
        w.writerows(rows)
    import cmaes
    import torch
    with open(os.path.join(OUT, 'optuna_versions.txt'), 'w') as fh:
        fh.write(f'optuna {optuna.__version__}\ncmaes {cmaes.__version__}\ntorch {torch.__version__}\n'
                 f'numpy {np.__version__}\n')


if __name__ == '__main__':
    main()
