//! Fitting the pf detector: the intrabar resolution, and the levels, GARCH and bursts by
//! maximum likelihood of a Gray-collapse Markov-switching GARCH filter with the same range
//! likelihood as the particle filter (see the parent module for why and how).

use super::range_law::{bridges, excess};
use super::{bar_ll, burst_mixture, level_prior, Fit, Obs, Prior, RangeLaw, BURST_Z, STEPS};
use crate::regime::msgarch;

/// Bursts: largest chance per bar, and bounds of their size (sd of the `ln sd` offset); the
/// fits start from `BURST_START` (logit of the chance, `ln` of the size). Real hourly bars want
/// most bars noisy (BTC+ETH: chance 0.64-0.78, which a bound of 0.5 had held at 0.5), so the
/// chance may go up to 0.95: a log-normal noise on nearly every bar's sd.
const MAX_BURST_RATE: f64 = 0.95;
const MIN_BURST: f64 = 0.05;
const MAX_BURST: f64 = 2.0;
const BURST_START: (f64, f64) = (-2.944, -0.357);

/// The intrabar resolution of [`STEPS`] whose predicted share of bars whose range is their body
/// is nearest the share seen on bars `lo..hi` (each bar's sd from an average of its symbol's
/// squared returns over the day before it).
fn estimate_steps(o: &Obs, lo: usize, hi: usize) -> usize {
    let ns = o.ns;
    let mut us = Vec::new();
    let mut seen = 0usize;
    for j in 0..ns {
        let mut var = None::<f64>;
        for t in lo..hi {
            let q = t * ns + j;
            if let Some(v) = var.filter(|v| *v > 0.0) {
                us.push(o.body[q] / v.sqrt());
                seen += o.atom[q] as usize;
            }
            let r2 = o.ret[q] * o.ret[q];
            var = Some(var.map_or(r2, |v| 0.96 * v + 0.04 * r2));
        }
    }
    if us.is_empty() {
        return 12;
    }
    let seen = seen as f64 / us.len() as f64;
    let samples = 4000;
    let mut best = (f64::INFINITY, 12);
    for &k in &STEPS {
        let br = bridges(k, samples);
        // Atom probability on a grid of u, then averaged over the bars' u.
        let grid: Vec<f64> =
            (0..=80).map(|g| br.chunks(k + 1).filter(|b| excess(b, g as f64 * 0.1) <= 1e-12).count() as f64 / samples as f64).collect();
        let predicted = us.iter().map(|u| grid[((u / 0.1).round() as usize).min(80)]).sum::<f64>() / us.len() as f64;
        let gap = (predicted - seen).abs();
        if gap < best.0 {
            best = (gap, k);
        }
    }
    best.1
}

/// The intrabar resolution for bars `lo..hi`, as a range law, and a first fit under it: a first
/// guess from the share of bars whose range is their body ([`estimate_steps`]), a fit under
/// that guess, then of [`STEPS`] the resolution under which that fit's bars are likeliest.
pub(super) fn choose_law(o: &Obs, lo: usize, hi: usize, stay: f64, prev: Option<&Fit>, prior: Prior) -> (RangeLaw, Fit) {
    let k0 = estimate_steps(o, lo, hi);
    let f0 = fit(o, &RangeLaw::build(k0, 20_000), lo, hi, stay, prev, prior).swap_remove(0);
    let base = Fit::new(Vec::new(), f0.log_m.clone(), f0.rho);
    let (l0, l1) = f0.th[..4].iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(*x), h.max(*x)));
    let score = |k: usize| {
        let grid = FitGrid::new(&RangeLaw::build(k, 20_000), o, &base, lo, hi, fit_bounds((l0, l1)));
        loglik(&f0.th, &base, &grid, o, lo, hi, stay)
    };
    let k = STEPS.iter().copied().map(|k| (k, score(k))).max_by(|x, y| x.1.total_cmp(&y.1)).map_or(k0, |b| b.0);
    tracing::debug!(first_guess = k0, steps = k, "pf: intrabar steps");
    (RangeLaw::build(k, 40_000), f0)
}

/// Every bar's range log likelihood (summed over symbols, multipliers fixed) on one grid of
/// `ln sd`, for the fits: a likelihood evaluation then reads it off, and a burst's shifted sd
/// costs one more lookup rather than a pass over the symbols.
struct FitGrid {
    first: usize,
    lo: f64,
    dg: f64,
    ll: Vec<f64>,
}

/// Points per bar of a [`FitGrid`].
const FIT_GRID: usize = 240;

impl FitGrid {
    fn new(law: &RangeLaw, o: &Obs, base: &Fit, lo: usize, hi: usize, bounds: (f64, f64)) -> FitGrid {
        let dg = (bounds.1 - bounds.0) / (FIT_GRID - 1) as f64;
        let mut ll = Vec::with_capacity((hi - lo) * FIT_GRID);
        for t in lo..hi {
            ll.extend((0..FIT_GRID).map(|g| bar_ll(law, o, base, t, (bounds.0 + g as f64 * dg).exp())));
        }
        FitGrid { first: lo, lo: bounds.0, dg, ll }
    }

    /// Bar t's range log likelihood at `ln sd` `ls` (held at the grid's ends beyond them).
    fn at(&self, t: usize, ls: f64) -> f64 {
        let y = ((ls - self.lo) / self.dg).clamp(0.0, FIT_GRID as f64 - 1.000001);
        let (i, fr) = (y as usize, y.fract());
        let row = &self.ll[(t - self.first) * FIT_GRID..];
        (1.0 - fr) * row[i] + fr * row[i + 1]
    }
}

/// Mean multiplier-scaled return of bar t.
fn scaled_mean(o: &Obs, f: &Fit, t: usize) -> f64 {
    let ns = o.ns;
    o.ret[t * ns..(t + 1) * ns].iter().zip(&f.m).map(|(r, m)| r / m).sum::<f64>() / ns as f64
}

/// Log likelihood of `th` on bars `lo..hi` under the Gray-collapse filter, the bars' range
/// likelihood read off `grid`; -inf outside bounds.
fn loglik(th: &[f64], base: &Fit, grid: &FitGrid, o: &Obs, lo: usize, hi: usize, stay: f64) -> f64 {
    let (a, b) = (th[4], th[5]);
    if !(a > 0.0 && b >= 0.0 && a + b < 0.999 && th.iter().all(|x| x.is_finite())) {
        return f64::NEG_INFINITY;
    }
    let f = Fit::new(th.to_vec(), base.log_m.clone(), base.rho);
    let (pi, size) = f.burst;
    if pi > MAX_BURST_RATE || !(MIN_BURST..=MAX_BURST).contains(&size) {
        return f64::NEG_INFINITY;
    }
    let switch = (1.0 - stay) / 3.0;
    let (mut alpha, mut h) = ([0.25f64; 4], [1.0f64; 4]);
    let mut total = 0.0;
    for t in lo..hi {
        let c = scaled_mean(o, &f, t);
        let mut h_in = [1.0; 4];
        let mut prior = [0.0; 4];
        let mut ll = [0.0; 4];
        let mut f2 = [0.0; 4];
        for j in 0..4 {
            let w = |i: usize| alpha[i] * if i == j { stay } else { switch };
            prior[j] = (0..4).map(w).sum::<f64>();
            h_in[j] = (0..4).map(|i| w(i) * h[i]).sum::<f64>() / prior[j].max(1e-300);
            let s = f.v[j] * h_in[j].sqrt();
            let l0 = grid.at(t, s.ln());
            // Bursts mixed in; the factor shock read at each component's sd, weighted by how
            // likely the bar makes it.
            let lq = std::array::from_fn(|q| grid.at(t, s.ln() + BURST_Z[q].0 * size));
            let (mixed, terms) = burst_mixture(pi, l0, &lq);
            let sds = std::iter::once(s).chain(BURST_Z.iter().map(|(z, _)| s * (z * size).exp()));
            let acc = terms.iter().zip(sds).map(|(e, sd)| e * f.f2(c, sd, o.ns)).sum::<f64>();
            (ll[j], f2[j]) = (mixed, acc / terms.iter().sum::<f64>().max(1e-300));
        }
        let top = ll.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let next: [f64; 4] = std::array::from_fn(|j| prior[j] * (ll[j] - top).exp());
        let s: f64 = next.iter().sum::<f64>().max(1e-300);
        alpha = next.map(|x| x / s);
        total += top + s.ln();
        for k in 0..4 {
            h[k] = (1.0 - a - b) + (a * f2[k] + b) * h_in[k];
        }
    }
    total
}

/// Bounds of a [`FitGrid`] for levels spanning `levels`: `h` from 1/20 to 40 and bursts.
fn fit_bounds(levels: (f64, f64)) -> (f64, f64) {
    (levels.0 + 0.5 * (0.05f64).ln() - 1.5, levels.1 + 0.5 * 40f64.ln() + 1.5)
}

/// Candidate fits on bars `lo..hi`, distinct in their levels: local maxima of the Gray-collapse
/// likelihood times the levels' prior (see `level_prior`), the likeliest first (from the best of three fresh starts, from `prev` when there
/// is one, and the likelier of those moved on by [`escape_by_scans`]), then `prev` unchanged.
pub(super) fn fit(o: &Obs, law: &RangeLaw, lo: usize, hi: usize, stay: f64, prev: Option<&Fit>, prior: Prior) -> Vec<Fit> {
    let (ns, w) = (o.ns, hi - lo);
    let mean_lr: Vec<f64> = (0..ns).map(|j| (lo..hi).map(|t| o.range[t * ns + j].max(1e-12).ln()).sum::<f64>() / w as f64).collect();
    let log_m: Vec<f64> = mean_lr.iter().map(|x| x - mean_lr[0]).collect();
    let rho = msgarch::mean_correlation(ns, lo, hi, |t, j| o.ret[t * ns + j]);
    let base = Fit::new(Vec::new(), log_m, rho);
    // Starts: volatility levels from quantiles of a day's average of the bars' mean
    // multiplier-scaled log range (a range is about 1.3 sd); the best of three by likelihood,
    // then from the last fit as well. A fit from the last one alone can stay in a local optimum
    // (two states on one level, a regime missing) for the rest of the run.
    let mut lv: Vec<f64> = Vec::with_capacity(w);
    let mut ew = None::<f64>;
    for t in lo..hi {
        let x = (0..ns).map(|j| o.range[t * ns + j].max(1e-12).ln() - base.log_m[j]).sum::<f64>() / ns as f64 - 0.25;
        let e = ew.map_or(x, |e| 0.96 * e + 0.04 * x);
        ew = Some(e);
        lv.push(e);
    }
    lv.sort_by(f64::total_cmp);
    let q = |p: f64| lv[((lv.len() - 1) as f64 * p) as usize];
    let grid = FitGrid::new(law, o, &base, lo, hi, fit_bounds((q(0.01), q(0.99))));
    let cost = |th: &[f64]| -loglik(th, &base, &grid, o, lo, hi, stay) + level_prior(th, prior);
    let fresh = [([0.1, 0.4, 0.6, 0.9], (0.05, 0.9)), ([0.15, 0.45, 0.65, 0.95], (0.1, 0.8)), ([0.05, 0.3, 0.5, 0.85], (0.03, 0.95))]
        .iter()
        .map(|(qs, ab)| vec![q(qs[0]), q(qs[1]), q(qs[2]), q(qs[3]), ab.0, ab.1, BURST_START.0, BURST_START.1])
        .map(|x| (cost(&x), x))
        .min_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, x)| x)
        .expect("three starts");
    let mut found: Vec<(f64, Vec<f64>)> = Vec::new();
    let mut starts = vec![(fresh, 2)];
    if let Some(p) = prev {
        starts.push((p.th.clone(), 1));
    }
    for (x0, rounds) in starts {
        let x = msgarch::best_minimum(&cost, vec![(x0, rounds)]);
        found.push((cost(&x), x));
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    let x = escape_by_scans(&cost, found[0].1.clone(), (q(0.01), q(0.99)));
    found.push((cost(&x), x));
    found.sort_by(|a, b| a.0.total_cmp(&b.0));
    // Distinct: sorted levels more than 0.05 apart (in ln) somewhere.
    let sorted = |x: &[f64]| {
        let mut l = x[..4].to_vec();
        l.sort_by(f64::total_cmp);
        l
    };
    // The last fit as it was: the filter's likelihood chose it before, and the Gray fit can
    // drift from it to a worse configuration.
    if let Some(p) = prev {
        found.push((f64::INFINITY, p.th.clone()));
    }
    let mut out: Vec<Fit> = Vec::new();
    for (_, x) in found {
        if out.iter().all(|f| sorted(&f.th).iter().zip(sorted(&x)).any(|(a, b)| (a - b).abs() > 0.05)) {
            out.push(Fit::new(x, base.log_m.clone(), base.rho));
        }
    }
    out
}

/// From a minimum `x` of `cost` (levels first), scan each of the four levels alone over `span`
/// and move it to the best scanned value when that is lower, then polish with Nelder-Mead; until
/// no scan helps. A local minimum where two states share one level while a regime has none is
/// common (levels 0.2 apart in `ln` are hard to tell from the starts), and one level moved
/// across another's gets out of it.
fn escape_by_scans(cost: &dyn Fn(&[f64]) -> f64, mut x: Vec<f64>, span: (f64, f64)) -> Vec<f64> {
    const SCAN_POINTS: usize = 40;
    const ROUNDS: usize = 3;
    let mut c = cost(&x);
    for _ in 0..ROUNDS {
        let mut moved = false;
        for k in 0..4 {
            let mut y = x.clone();
            let best = (0..SCAN_POINTS)
                .map(|i| span.0 + (span.1 - span.0) * i as f64 / (SCAN_POINTS - 1) as f64)
                .map(|v| {
                    y[k] = v;
                    (cost(&y), v)
                })
                .min_by(|a, b| a.0.total_cmp(&b.0));
            if let Some((cb, v)) = best.filter(|(cb, _)| *cb < c - 0.5) {
                x[k] = v;
                c = cb;
                moved = true;
            }
        }
        if !moved {
            break;
        }
        x = msgarch::best_minimum(cost, vec![(x, 1)]);
        c = cost(&x);
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_scans_leave_a_local_minimum_for_a_deeper_one() {
        // Each level alone has two wells, (y-1)^2 at 1 and (y-3)^2 - 2 at 3 (the deeper); the
        // last two coordinates have one, at 0.5. From every level in the shallow well, Nelder-Mead
        // stays there; the scans must move each level to 3, a cost of -8 in all.
        let well = |y: f64| ((y - 1.0).powi(2)).min((y - 3.0).powi(2) - 2.0);
        let cost = |x: &[f64]| x[..4].iter().map(|y| well(*y)).sum::<f64>() + x[4..].iter().map(|y| (y - 0.5).powi(2)).sum::<f64>();
        let stuck = crate::numerics::nelder_mead(&cost, vec![1.0, 1.0, 1.0, 1.0, 0.5, 0.5], 0.1, 300);
        assert!(stuck[..4].iter().all(|y| (y - 1.0).abs() < 0.05), "{stuck:?}");
        let x = escape_by_scans(&cost, stuck, (0.0, 4.0));
        assert!(x[..4].iter().all(|y| (y - 3.0).abs() < 0.02), "{x:?}");
        assert!((cost(&x) + 8.0).abs() < 1e-3, "{}", cost(&x));
    }
}
