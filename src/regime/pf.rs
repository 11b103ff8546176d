//! A particle-filter detector of the volatility axis (`detector = "pf"`) that reads each bar's
//! range *given its return*, causal by construction.
//!
//! Why: a bar's open-to-close move is fat-tailed, so a range read alone (the MS-GARCH's log
//! range) is a noisy gauge of volatility; the path inside the bar,
//! given where it ended, is close to a Brownian bridge, and how far it strayed beyond the
//! open-close interval says much more about the bar's standard deviation.
//!
//! Model, per bar t, state k and symbol i: the bar's standard deviation is
//! `v[k] * m[i] * sqrt(h[t])`; the shared variance `h` (mean 1) follows GARCH(1,1) in the
//! market's factor shock `f`, `h' = (1-a-b) + a*h*f^2 + b*h`; every state stays with probability
//! `1 - 1/mean_bars`. A bar's range given its return is that of a Brownian bridge of `steps`
//! Gaussian steps pinned at the return ([`RangeLaw`], tabulated by simulation); `steps`, the
//! intrabar resolution, is chosen at the first fit and again at `STEPS_AGAIN_AT` bars (first
//! from the share of bars whose range is their body, then of [`STEPS`] the likeliest). The
//! multiplier-scaled returns are a common factor return plus each symbol's own shock, both
//! Student-t(4), with a small chance (`JUMP_RATE`) of a market-wide jump instead of the factor.
//! Bursts: with chance `pi` a bar's sd is `e^eta` times its state's, `eta` normal with sd `size`,
//! for the symbols together, both fitted (real hourly bars have such news hours; without them one
//! such bar reads as two state switches).
//!
//! Filtering: [`PARTICLES`] particles over (state, `h`), weighted by the bar's likelihood (ranges
//! given returns, and the returns with the factor integrated out on `NODES` nodes) on a grid of
//! `ln sd` (`BarGrid`), resampled systematically, then moved: burst or not from its posterior,
//! `h` on with `f` from its posterior given the returns (`|f|` capped at [`F_CAP`]), then the
//! state may switch. A bar's state is the one with the most weight, with hysteresis
//! ([`super::hold_states`], `switch_margin`). The random stream has a fixed seed, so a run is
//! reproducible and a bar's state does not depend on later bars.
//!
//! Fitting: until `warmup` bars exist (500 by default here), the rules' states stand in. Then
//! every `warmup` bars until the history is 4,000 bars long (`next_refit`), then every
//! `refit_every` bars (or a fortieth of the bars so far, when longer), on the history before the refit bar (at most [`FIT_WINDOW`] bars): multipliers from
//! each symbol's mean log range, correlation from the returns, and `v`, `a`, `b` and the bursts by
//! maximum likelihood of a Markov-switching GARCH filter with the same range likelihood
//! (`fit::FitGrid`, Gray's collapse; deterministic and cheap). That likelihood has local maxima
//! where two states share one level, so: Nelder-Mead from three volatility-quantile starts and
//! the last fit; each level then scanned alone across the range (`escape_by_scans`); and among
//! the distinct results and the last fit, the particle filter's own likelihood of the history
//! chooses (`pf_scores`), and the filter goes on from the chosen fit's particles. Both include
//! the user's prior on the levels, if set (`regime.level_prior`, sd `regime.level_prior_sd`):
//! sorted, the fitted levels are the prior's relative volatilities times one common factor, each
//! off by a normal error in `ln`.
//!
//! States are ranked by `v`, low to high; the lowest is low volatility, the highest high
//! ([`super::Labels`] names bars from this axis and the trend). Measurements and the design's
//! history: `docs/regimes.md`.

use super::SIDEWAYS;
use crate::data::MarketData;
use crate::experiment::RegimeConfig;
use crate::numerics::{systematic_resample, weigh};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod fit;
mod range_law;
use fit::{choose_law, fit};
pub use range_law::RangeLaw;

/// Most bars a fit looks at.
pub const FIT_WINDOW: usize = 20_000;
/// History length at which the intrabar resolution is chosen again.
const STEPS_AGAIN_AT: usize = 4000;
/// Particles of the filter.
pub const PARTICLES: usize = 5000;
/// Largest factor shock (in standard deviations) a bar may pass on to `h`.
pub const F_CAP: f64 = 8.0;
/// Intrabar resolutions `estimate_steps` chooses from.
pub const STEPS: [usize; 8] = [2, 4, 6, 8, 12, 16, 24, 48];
/// Points of the grid of `ln sd` the bar likelihood is computed on.
const GRID: usize = 160;
/// Nodes of the integral over the factor return.
const NODES: usize = 80;
/// The factor and the symbols' own shocks: Student-t with 4 degrees of freedom, unit variance,
/// `T4 * (1 + z^2/2)^-2.5`.
const T4: f64 = 0.75 / std::f64::consts::SQRT_2;
/// Prior chance of a market-wide jump on a bar, and its size in bar standard deviations.
const JUMP_RATE: f64 = 1e-3;
const JUMP_SDS: f64 = 10.0;

/// Per bar and symbol (row-major, `n * ns`): log range, log return size, whether the range is
/// the body, and the log return; all but the flag divided by the bar's seasonal factor
/// ([`super::seasonal`]).
struct Obs {
    ns: usize,
    range: Vec<f64>,
    body: Vec<f64>,
    atom: Vec<bool>,
    ret: Vec<f64>,
}

impl Obs {
    fn new(md: &MarketData, ids: &[usize], season: &[f64]) -> Obs {
        let (n, ns) = (md.len(), ids.len());
        let mut o = Obs { ns, range: vec![0.0; n * ns], body: vec![0.0; n * ns], atom: vec![false; n * ns], ret: vec![0.0; n * ns] };
        for (j, &s) in ids.iter().enumerate() {
            let b = &md.bars[s];
            for (t, z) in season.iter().enumerate().take(n) {
                let q = t * ns + j;
                let r = (b.close[t] / b.open[t]).ln();
                let range = (b.high[t] / b.low[t]).ln().max(r.abs());
                // The body to within price rounding (a few parts in a million).
                o.atom[q] = range - r.abs() <= 3e-5;
                let scale = (-z).exp();
                o.range[q] = scale * range;
                o.body[q] = scale * r.abs();
                o.ret[q] = scale * r;
            }
        }
        o
    }
}

/// A fit: `th = [ln v0..3, a, b, logit of the burst chance, ln of the burst size]`, the
/// multipliers and the correlation.
#[derive(Debug, Clone)]
struct Fit {
    th: Vec<f64>,
    log_m: Vec<f64>,
    m: Vec<f64>,
    rho: f64,
    v: [f64; 4],
    /// Chance of a burst bar and the sd of its `ln sd` offset.
    burst: (f64, f64),
}

impl Fit {
    fn new(th: Vec<f64>, log_m: Vec<f64>, rho: f64) -> Fit {
        let v = std::array::from_fn(|k| th.get(k).map_or(1.0, |x| x.exp()));
        let m = log_m.iter().map(|x| x.exp()).collect();
        let burst = burst_of(&th);
        Fit { th, log_m, m, rho, v, burst }
    }

    /// Square of the bar's factor shock at common sd `s`, from the multiplier-scaled mean
    /// return `c` (the symbols' own shocks' share taken out), capped.
    fn f2(&self, c: f64, s: f64, ns: usize) -> f64 {
        let (rho, idio) = if ns > 1 { (self.rho, (1.0 - self.rho) / ns as f64) } else { (1.0, 0.0) };
        ((c * c / (s * s) - idio) / rho).clamp(0.0, 16.0)
    }
}

/// A fit's burst chance and size from `th[6]` (logit of the chance) and `th[7]` (`ln` of the
/// size); none when `th` has no such entries.
fn burst_of(th: &[f64]) -> (f64, f64) {
    match th {
        [_, _, _, _, _, _, lp, ls, ..] => (1.0 / (1.0 + (-lp).exp()), ls.exp()),
        _ => (0.0, 0.5),
    }
}

/// Bar t's log likelihood at common sd `s`.
fn bar_ll(law: &RangeLaw, o: &Obs, f: &Fit, t: usize, s: f64) -> f64 {
    let ns = o.ns;
    (0..ns).map(|j| law.ll(o.range[t * ns + j], o.body[t * ns + j], s * f.m[j], o.atom[t * ns + j])).sum()
}

/// The particle filter's log likelihood of bars `lo..hi` under each of `cands` (which share
/// multipliers and correlation), and its particles after them: every fit from fresh particles
/// with the same random stream, so that fits are compared on common random numbers, and all on
/// one grid per bar.
fn pf_scores(law: &RangeLaw, o: &Obs, cands: &[Fit], lo: usize, hi: usize, stay: f64) -> Vec<(f64, Particles)> {
    let Some(first) = cands.first() else { return Vec::new() };
    debug_assert!(cands.iter().all(|f| f.log_m == first.log_m && f.rho == first.rho), "one grid needs one set of multipliers");
    let bounds = cands.iter().map(|f| span(&f.th[..4])).fold((f64::INFINITY, f64::NEG_INFINITY), |a, b| (a.0.min(b.0), a.1.max(b.1)));
    let mut grid = BarGrid::new();
    let mut out: Vec<(f64, Particles)> = cands.iter().map(|_| (0.0, Particles::new())).collect();
    for t in lo..hi {
        grid.fill(law, o, first, t, bounds);
        for ((ll, parts), f) in out.iter_mut().zip(cands) {
            *ll += parts.step(&grid, f, stay).1;
        }
    }
    out
}

/// The user's prior on the regimes' levels (`regime.level_prior`, `regime.level_prior_sd`):
/// four relative volatilities in any order and the sd of each in `ln`; `None` for no prior.
pub(super) type Prior = Option<([f64; 4], f64)>;

/// Minus the log prior of a fit's levels `th[..4]` (up to a constant): sorted, they are the
/// prior's relative volatilities (sorted) times one common factor (profiled out), each off by a
/// normal error in `ln` of the prior's sd; none without a prior or with sd 0.
fn level_prior(th: &[f64], prior: Prior) -> f64 {
    let Some((levels, sd)) = prior.filter(|p| p.1 > 0.0) else {
        return 0.0;
    };
    let mut lv = [th[0], th[1], th[2], th[3]];
    lv.sort_by(f64::total_cmp);
    let mut tl = levels.map(f64::ln);
    tl.sort_by(f64::total_cmp);
    let c = (0..4).map(|k| lv[k] - tl[k]).sum::<f64>() / 4.0;
    (0..4).map(|k| (lv[k] - c - tl[k]).powi(2)).sum::<f64>() / (2.0 * sd * sd)
}

/// Bounds of the `ln sd` grid for levels `lv`: every level with `h` from 1/20 to 40.
fn span(lv: &[f64]) -> (f64, f64) {
    let lo = lv.iter().copied().fold(f64::INFINITY, f64::min) + 0.5 * (0.05f64).ln();
    let hi = lv.iter().copied().fold(f64::NEG_INFINITY, f64::max) + 0.5 * 40f64.ln();
    (lo, hi)
}

/// One bar's likelihood on a grid of `ln sd`, and per grid point the posterior of its factor
/// return: all a set of particles needs for the bar, and the same for every fit that shares the
/// multipliers and correlation, so candidate fits are scored on one grid.
struct BarGrid {
    lo: f64,
    dg: f64,
    /// `sqrt(rho)`: the factor's share of a return's sd.
    sr: f64,
    ll: Vec<f64>,
    /// The bar's multiplier-scaled returns.
    x: Vec<f64>,
    /// Per grid point: cumulative posterior weight of the factor return over `NODES` nodes
    /// (no jump), then the jump's weight, the first node and the node spacing.
    cdf: Vec<f64>,
    jump_w: Vec<f64>,
    c0: Vec<f64>,
    dc: Vec<f64>,
    /// The bar's likelihood with bursts mixed in, and per grid point the cumulative posterior of
    /// the burst components (no burst first, then each of `BURST_Z`).
    llm: Vec<f64>,
    comp: Vec<f64>,
    /// Grid points each burst component shifts the sd by (rounded) and its `ln sd` offset.
    shift: Vec<(isize, f64)>,
}

/// Standard-normal Gauss-Hermite nodes and weights (7 points).
const BURST_Z: [(f64, f64); 7] = [
    (-3.750439717725742, 0.000548268855972),
    (-2.366759410734541, 0.030757123967586),
    (-1.154405394739968, 0.240123178605013),
    (0.0, 0.457142857142857),
    (1.154405394739968, 0.240123178605013),
    (2.366759410734541, 0.030757123967586),
    (3.750439717725742, 0.000548268855972),
];

impl BarGrid {
    fn new() -> BarGrid {
        BarGrid {
            lo: 0.0,
            dg: 1.0,
            sr: 1.0,
            ll: vec![0.0; GRID],
            x: Vec::new(),
            cdf: vec![0.0; GRID * NODES],
            jump_w: vec![0.0; GRID],
            c0: vec![0.0; GRID],
            dc: vec![0.0; GRID],
            llm: vec![0.0; GRID],
            comp: vec![0.0; GRID * (BURST_Z.len() + 1)],
            shift: Vec::new(),
        }
    }

    /// Fill for bar t under `f`'s multipliers and correlation, over `ln sd` in `bounds`.
    fn fill(&mut self, law: &RangeLaw, o: &Obs, f: &Fit, t: usize, bounds: (f64, f64)) {
        let (lo, hi) = bounds;
        let dg = (hi - lo) / (GRID - 1) as f64;
        let ns = o.ns;
        self.x.clear();
        self.x.extend((0..ns).map(|j| o.ret[t * ns + j] / f.m[j]));
        let x = &self.x;
        let (xmin, xmax) = x.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| (l.min(*v), h.max(*v)));
        let (sr, se) = if ns > 1 { (f.rho.sqrt(), (1.0 - f.rho).sqrt()) } else { (1.0, 0.3) };
        for g in 0..GRID {
            let s = (lo + g as f64 * dg).exp();
            // The returns' likelihood, x[j] = c + s*sqrt(1-rho)*e[j] with the factor return
            // c = s*sqrt(rho)*f (or a jump), integrated over c on nodes spanning the returns.
            let sig_e = s * se;
            let (c_lo, dc) = (xmin - 6.0 * sig_e, (xmax - xmin + 12.0 * sig_e) / (NODES - 1) as f64);
            let norm_e = (T4 / sig_e).powi(ns as i32);
            let jump_sd = JUMP_SDS * s;
            let (mut acc, mut acc_j) = (0.0, 0.0);
            let row = &mut self.cdf[g * NODES..(g + 1) * NODES];
            for (node, cell) in row.iter_mut().enumerate() {
                let c = c_lo + node as f64 * dc;
                let q: f64 = x.iter().map(|xj| 1.0 + 0.5 * ((xj - c) / sig_e).powi(2)).product();
                let e = norm_e / (q * q * q.sqrt());
                let fv = c / (s * sr);
                let qf = 1.0 + 0.5 * fv * fv;
                acc += (1.0 - JUMP_RATE) * T4 / (s * sr) / (qf * qf * qf.sqrt()) * e * dc;
                acc_j += JUMP_RATE * (-0.5 * (c / jump_sd).powi(2)).exp() / (jump_sd * std::f64::consts::TAU.sqrt()) * e * dc;
                *cell = acc;
            }
            self.jump_w[g] = acc_j;
            self.c0[g] = c_lo;
            self.dc[g] = dc;
            self.ll[g] = bar_ll(law, o, f, t, s) + (acc + acc_j).max(1e-300).ln();
        }
        (self.lo, self.dg, self.sr) = (lo, dg, sr);
        self.mix_bursts(f.burst);
    }

    /// Mix in bursts: with chance `pi` the bar's sd is `e^eta` times the state's, `eta` normal
    /// with sd `size` (on the nodes of `BURST_Z`, read off the grid).
    fn mix_bursts(&mut self, (pi, size): (f64, f64)) {
        let nc = BURST_Z.len() + 1;
        self.shift.clear();
        self.shift.extend(BURST_Z.iter().map(|(z, _)| ((z * size / self.dg).round() as isize, z * size)));
        for g in 0..GRID {
            let lq = std::array::from_fn(|q| self.ll[(g as isize + self.shift[q].0).clamp(0, GRID as isize - 1) as usize]);
            let (mixed, terms) = burst_mixture(pi, self.ll[g], &lq);
            self.llm[g] = mixed;
            let mut acc = 0.0;
            for (cell, e) in self.comp[g * nc..(g + 1) * nc].iter_mut().zip(terms) {
                acc += e;
                *cell = acc;
            }
        }
    }
}

/// A bar's likelihood with bursts mixed in at chance `pi`, from its log likelihood `l0` at the
/// state's sd and `lq[q]` at the sd of each of [`BURST_Z`]'s components: the mixture's log and
/// its terms (no burst, then each component) relative to the largest, in proportion to the
/// components' posterior.
fn burst_mixture(pi: f64, l0: f64, lq: &[f64; BURST_Z.len()]) -> (f64, [f64; BURST_Z.len() + 1]) {
    let top = lq.iter().copied().fold(l0, f64::max);
    let mut e = [0.0; BURST_Z.len() + 1];
    e[0] = (1.0 - pi) * (l0 - top).exp();
    for (q, ((_, w), l)) in BURST_Z.iter().zip(lq).enumerate() {
        e[q + 1] = pi * w * (l - top).exp();
    }
    (top + e.iter().sum::<f64>().max(1e-300).ln(), e)
}

/// The particles and their buffers.
struct Particles {
    reg: Vec<u8>,
    h: Vec<f64>,
    w: Vec<f64>,
    reg2: Vec<u8>,
    h2: Vec<f64>,
    rng: ChaCha8Rng,
    /// Student-t(4), for factor shocks of bars that were more likely a jump.
    t4: Option<rand_distr::StudentT<f64>>,
}

impl Particles {
    fn new() -> Particles {
        Particles {
            reg: (0..PARTICLES).map(|p| (p % 4) as u8).collect(),
            h: vec![1.0; PARTICLES],
            w: vec![0.0; PARTICLES],
            reg2: vec![0; PARTICLES],
            h2: vec![0.0; PARTICLES],
            rng: ChaCha8Rng::seed_from_u64(0x9F17E2),
            t4: rand_distr::StudentT::new(4.0).ok(),
        }
    }

    /// One bar, its grid filled: weigh, resample, move under `f`. Returns the states' posterior
    /// shares at the bar and its log likelihood given the bars before it.
    fn step(&mut self, g: &BarGrid, f: &Fit, stay: f64) -> ([f64; 4], f64) {
        let (a, b) = (f.th[4], f.th[5]);
        let lv: [f64; 4] = std::array::from_fn(|k| f.th[k]);
        let (lo, dg) = (g.lo, g.dg);
        for p in 0..PARTICLES {
            let y = ((lv[self.reg[p] as usize] + 0.5 * self.h[p].ln() - lo) / dg).clamp(0.0, GRID as f64 - 1.000001);
            let (i, fr) = (y as usize, y.fract());
            self.w[p] = (1.0 - fr) * g.llm[i] + fr * g.llm[i + 1];
        }
        let (tot, by, ll) = weigh(&mut self.w, &self.reg);
        let u0 = self.rng.gen::<f64>();
        systematic_resample(&self.w, tot, u0, (&self.reg, &self.h), (&mut self.reg2, &mut self.h2));
        std::mem::swap(&mut self.reg, &mut self.reg2);
        std::mem::swap(&mut self.h, &mut self.h2);
        // Move: h on with the factor shock drawn from its posterior at the particle's sd (its
        // nearest grid point; from its prior when the bar's move was a jump), then the regime.
        for p in 0..PARTICLES {
            let k = self.reg[p] as usize;
            let ls = lv[k] + 0.5 * self.h[p].ln();
            let i0 = ((ls - lo) / dg).round().clamp(0.0, GRID as f64 - 1.0) as usize;
            // Was the bar a burst? Then its factor shock is read at the burst's sd.
            let nc = BURST_Z.len() + 1;
            let crow = &g.comp[i0 * nc..(i0 + 1) * nc];
            let (i, ls) = if crow[nc - 1] > crow[0] {
                let v = self.rng.gen::<f64>() * crow[nc - 1];
                match crow.partition_point(|c| *c < v) {
                    0 => (i0, ls),
                    q => {
                        let (sh, eta) = g.shift[(q - 1).min(nc - 2)];
                        ((i0 as isize + sh).clamp(0, GRID as isize - 1) as usize, ls + eta)
                    }
                }
            } else {
                (i0, ls)
            };
            let row = &g.cdf[i * NODES..(i + 1) * NODES];
            let total = row[NODES - 1] + g.jump_w[i];
            let v = self.rng.gen::<f64>() * total;
            let fs = if v >= row[NODES - 1] || total <= 0.0 {
                // Student-t(4) at unit variance.
                self.t4.as_ref().map_or(f64::NAN, |t| self.rng.sample(t)) * 0.5f64.sqrt()
            } else {
                let node = row.partition_point(|cv| *cv < v).min(NODES - 1);
                let c = g.c0[i] + (node as f64 + self.rng.gen::<f64>() - 0.5) * g.dc[i];
                c / (ls.exp() * g.sr)
            }
            .clamp(-F_CAP, F_CAP);
            self.h[p] = (1.0 - a - b) + (a * fs * fs + b) * self.h[p];
            if self.rng.gen::<f64>() >= stay {
                self.reg[p] = ((k + 1 + self.rng.gen_range(0..3)) % 4) as u8;
            }
        }
        (by.map(|x| x / tot), ll)
    }
}

/// The bar of the refit after the one at bar `t`, for a first fit at `start` and `refit_every`
/// `every`. Early fits come on short histories, and each regime seen for the first time moves
/// them: every `start` bars until the history is [`STEPS_AGAIN_AT`] bars long, then on the
/// schedule (every `every` bars, or a fortieth of the bars so far when that is longer).
fn next_refit(t: usize, start: usize, every: usize) -> usize {
    if t < STEPS_AGAIN_AT {
        t + start.min(every)
    } else {
        t + every.max(t / 40).min(t)
    }
}

/// Labels for every bar of `md` (symbols `ids`); `before` gives the labels until the first fit.
pub fn detect(cfg: &RegimeConfig, md: &MarketData, ids: &[usize], season: &[f64], before: &[u8]) -> Vec<u8> {
    let prior: Prior = cfg.level_prior.map(|l| (l, cfg.level_prior_sd));
    let o = Obs::new(md, ids, season);
    let n = md.len();
    let mut out = before.to_vec();
    let start = cfg.warmup_bars().max(100);
    if n <= start || ids.is_empty() {
        return out;
    }
    let every = cfg.refit_every.max(1);
    let stay = 1.0 - 1.0 / cfg.mean_bars.max(2.0);
    let mut law: Option<RangeLaw> = None;
    let mut cur: Option<Fit> = None;
    let mut parts = Particles::new();
    let mut grid = BarGrid::new();
    let mut bounds = (0.0, 0.0);
    let mut lab = [SIDEWAYS; 4];
    let mut held: Option<u8> = None;
    let mut next_fit = start;
    let mut steps_again = true;
    for (t, label) in out.iter_mut().enumerate() {
        if t == next_fit {
            let lo = t.saturating_sub(FIT_WINDOW);
            if law.is_none() || (steps_again && t - lo >= STEPS_AGAIN_AT) {
                // Chosen again on a longer history: a few hundred bars can mistake 12 steps
                // for 16.
                steps_again = law.is_none();
                let (rl, f0) = choose_law(&o, lo, t, stay, cur.as_ref(), prior);
                law = Some(rl);
                cur.get_or_insert(f0);
            }
            let rl = law.as_ref().expect("built above");
            // The Gray-collapse likelihood can prefer a wrong configuration (two states on one
            // regime's level, one between two others): among its distinct optima the filter's
            // own likelihood on the window, with the level prior, decides, and the filter goes on from the particles
            // that scored it.
            let mut cands = fit(&o, rl, lo, t, stay, cur.as_ref(), prior);
            let mut scored = pf_scores(rl, &o, &cands, lo, t, stay);
            tracing::debug!(bar = t, candidates = ?cands.iter().map(|f| f.v).collect::<Vec<_>>(), pf_ll = ?scored.iter().map(|s| s.0).collect::<Vec<_>>(), "pf: candidate fits");
            let post = |i: usize| scored[i].0 - level_prior(&cands[i].th, prior);
            let best = (0..cands.len()).max_by(|x, y| post(*x).total_cmp(&post(*y))).unwrap_or(0);
            let f = cands.swap_remove(best);
            parts = scored.swap_remove(best).1;
            lab = super::msgarch::names_by_level(&f.th[..4]);
            bounds = span(&f.th[..4]);
            tracing::debug!(bar = t, v = ?f.v, a = f.th[4], b = f.th[5], rho = f.rho, burst = ?f.burst, "pf: refit");
            cur = Some(f);
            next_fit = next_refit(t, start, every);
        }
        if let (Some(f), Some(rl)) = (&cur, &law) {
            grid.fill(rl, &o, f, t, bounds);
            let by = parts.step(&grid, f, stay).0;
            *label = super::hold_states(&mut held, &by, &lab, cfg.switch_margin);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_level_prior_is_the_squared_distance_to_the_regimes_relative_levels_after_one_shift() {
        // The regimes' own levels, in any order and times any factor: no penalty.
        let k = 0.37f64.ln();
        let exact = [1.2f64, 0.3, 0.6, 0.5].map(|v| v.ln() + k);
        let p = Some(([0.5, 0.6, 0.3, 1.2], 0.1));
        assert!(level_prior(&exact, p).abs() < 1e-12);
        // high_vol 0.2 too high: the shift takes a quarter of it, leaving residuals 0.15 and three
        // of -0.05: (0.0225 + 3 * 0.0025) / (2 * 0.01) = 1.5.
        let mut off = exact;
        off[0] += 0.2;
        assert!((level_prior(&off, p) - 1.5).abs() < 1e-9, "{}", level_prior(&off, p));
        // Two states on one level, a regime missing (bull and bear both at 0.55): sorted levels
        // ln 0.3, 0.55, 0.55, 1.2 against ln 0.3, 0.5, 0.6, 1.2.
        let shared = [0.3f64, 0.55, 0.55, 1.2].map(f64::ln);
        let d = [0.0, (0.55f64 / 0.5).ln(), (0.55f64 / 0.6).ln(), 0.0];
        let m = d.iter().sum::<f64>() / 4.0;
        let want = d.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 0.02;
        assert!((level_prior(&shared, p) - want).abs() < 1e-9);
        // Off.
        assert_eq!(level_prior(&off, Some(([0.5, 0.6, 0.3, 1.2], 0.0))), 0.0);
        assert_eq!(level_prior(&off, None), 0.0);
    }

    #[test]
    fn refits_come_every_warm_up_until_4000_bars_then_every_refit_every_or_a_fortieth() {
        let seq = |start: usize, every: usize, until: usize| {
            let mut v = vec![start];
            while *v.last().unwrap() < until {
                v.push(next_refit(*v.last().unwrap(), start, every));
            }
            v
        };
        assert_eq!(seq(500, 2000, 10_000), [500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 6000, 8000, 10_000]);
        // Past 80,000 bars a fortieth is longer than 2,000: 80,000 + 2,000, then 82,000 / 40 = 2,050.
        assert_eq!(next_refit(80_000, 500, 2000), 82_000);
        assert_eq!(next_refit(82_000, 500, 2000), 84_050);
        // A warm-up longer than `refit_every` refits every `refit_every` bars early on too.
        assert_eq!(seq(2000, 1000, 5000), [2000, 3000, 4000, 5000]);
    }

    #[test]
    fn bursts_mix_the_likelihood_as_a_normal_offset_of_ln_sd_would() {
        // A bar whose likelihood is Gaussian in `ln sd` (mean 0, sd 0.4). With chance pi its sd
        // is e^eta times the state's, eta ~ N(0, 0.3^2): the mixture is (1 - pi) L(x) + pi times
        // L convolved with that normal, a Gaussian of sd 0.5 and peak 0.4 / 0.5 of L's.
        let mut g = BarGrid::new();
        let dg = 8.0 / (GRID - 1) as f64;
        (g.lo, g.dg) = (-4.0, dg);
        let x = |i: usize| -4.0 + i as f64 * dg;
        for i in 0..GRID {
            g.ll[i] = -0.5 * (x(i) / 0.4).powi(2);
        }
        let pi = 0.2;
        g.mix_bursts((pi, 0.3));
        for i in (60..=100).step_by(5) {
            let want = ((1.0 - pi) * g.ll[i].exp() + pi * 0.8 * (-0.5 * (x(i) / 0.5).powi(2)).exp()).ln();
            assert!((g.llm[i] - want).abs() < 0.02, "ln sd {}: {} against {want}", x(i), g.llm[i]);
        }
        // The posterior of the burst components: at the peak the bar is no burst with chance
        // (1 - pi) / ((1 - pi) + pi * 0.8); far out in the tail it was almost surely a burst.
        let nc = BURST_Z.len() + 1;
        let mid = (GRID - 1) / 2 + 1;
        let row = &g.comp[mid * nc..(mid + 1) * nc];
        let p_none = (1.0 - pi) / ((1.0 - pi) + pi * 0.8 * (-0.5 * (x(mid) / 0.5).powi(2) + 0.5 * (x(mid) / 0.4).powi(2)).exp());
        assert!((row[0] / row[nc - 1] - p_none).abs() < 0.01, "{} against {p_none}", row[0] / row[nc - 1]);
        let far = mid + 40;
        assert!(g.comp[far * nc] / g.comp[far * nc + nc - 1] < 0.3);
        // No bursts: the likelihood unchanged.
        g.mix_bursts((0.0, 0.3));
        assert!((0..GRID).all(|i| (g.llm[i] - g.ll[i]).abs() < 1e-9));
    }
}
