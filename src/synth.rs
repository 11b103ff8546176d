//! A seeded synthetic market that looks like crypto to a strategy: correlated symbols,
//! fat-tailed returns (Student-t), volatility clustering (GARCH(1,1) on a shared market
//! variance), Markov-switching regimes (bull, bear, sideways, high-volatility) whose true labels
//! are written beside the bars, optional market-wide jumps, and OHLC bars whose high and low come
//! from a finer Brownian-bridge path between open and close.
//!
//! Model, per bar t and symbol i (log returns):
//! `r[i,t] = mu[reg]/N + sigma[reg]*m[i]/sqrt(N) * sqrt(h[t]) * z[i,t] (+ jump)`, where N is
//! bars per year, `z[i] = sqrt(rho)*f + sqrt(1-rho)*e[i]` with f, e unit-variance Student-t,
//! and `h[t+1] = (1-a-b) + a*h[t]*f[t]^2 + b*h[t]` (mean 1), so `mu` is the annual drift of
//! log price and `sigma` the annual volatility, per regime, on average.

use crate::data::time::{format_ts, Timeframe};
use crate::data::{write_bars, Bars, OutFormat, SymbolSeries};
use crate::error::{Error, Result};
use crate::experiment::RegimeConfig;
use crate::regime::{accuracy, detect, stability, Accuracy, Stability, REGIMES};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{StandardNormal, StudentT};
use std::path::{Path, PathBuf};

/// Default annual volatility per regime, in [`REGIMES`] order.
pub const DEFAULT_VOL: [f64; 4] = [0.5, 0.6, 0.3, 1.2];

/// One synthetic symbol.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthSymbol {
    /// Name.
    pub name: String,
    /// First open.
    pub price: f64,
    /// Volatility multiplier against the regime's volatility.
    pub vol_mult: f64,
    /// Typical quote-currency volume per bar.
    pub notional_per_bar: f64,
}

/// Parameters of the generator.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthConfig {
    /// RNG seed.
    pub seed: u64,
    /// Number of bars.
    pub bars: usize,
    /// Bar length.
    pub timeframe: Timeframe,
    /// First bar's open time (ms).
    pub start: i64,
    /// Symbols.
    pub symbols: Vec<SynthSymbol>,
    /// Mean regime duration in bars (switch probability 1/this per bar).
    pub mean_regime_bars: f64,
    /// Correlation of every pair of symbols' return shocks.
    pub correlation: f64,
    /// Annual log drift per regime, in [`REGIMES`] order.
    pub drift: [f64; 4],
    /// Annual volatility per regime, in [`REGIMES`] order.
    pub vol: [f64; 4],
    /// Student-t degrees of freedom of the shocks (>= 3; higher is thinner-tailed).
    pub tail_dof: u32,
    /// GARCH(1,1) alpha and beta of the shared variance (alpha + beta < 1).
    pub garch: (f64, f64),
    /// Market-wide jumps: probability per bar (0 for none).
    pub jump_prob: f64,
    /// Sub-steps per bar for the path that sets high and low.
    pub substeps: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        let sym = |name: &str, price, vol_mult, notional_per_bar| SynthSymbol { name: name.into(), price, vol_mult, notional_per_bar };
        SynthConfig {
            seed: 42,
            bars: 2 * 8760,
            timeframe: Timeframe::from_ms(crate::data::time::HOUR_MS),
            start: 1_672_531_200_000, // 2023-01-01T00:00:00Z
            symbols: vec![
                sym("BTC", 30_000.0, 1.0, 40e6),
                sym("ETH", 2_000.0, 1.25, 20e6),
                sym("SOL", 25.0, 1.8, 5e6),
                sym("BNB", 300.0, 1.1, 3e6),
            ],
            mean_regime_bars: 300.0,
            correlation: 0.7,
            drift: [1.0, -0.9, 0.0, -0.2],
            vol: DEFAULT_VOL,
            tail_dof: 4,
            garch: (0.05, 0.93),
            jump_prob: 1.0 / 1500.0,
            substeps: 12,
        }
    }
}

/// What the generator made: bars per symbol and the true regime id per bar.
#[derive(Debug, Clone)]
pub struct SynthMarket {
    /// One series per symbol, all on the same clock.
    pub series: Vec<SymbolSeries>,
    /// True regime id (index into [`REGIMES`]) per bar.
    pub regimes: Vec<u8>,
    /// The shared GARCH variance `h` per bar (mean 1): not written to files; for measuring what
    /// a detector could do if it knew it (`cargo bench --bench regime_ceiling`).
    pub variance: Vec<f64>,
}

/// One row of the simulated model's predictions (see [`predictions`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// Bar index (the prediction is made at its close).
    pub bar: usize,
    /// Symbol index.
    pub sym: usize,
    /// +1 or -1.
    pub dir: i8,
    /// 1..=4.
    pub strength: u8,
    /// In [0.5, 1].
    pub conf: f64,
}

/// A simulated forecasting model with a known skill, to exercise signal-file replay: every
/// `every` bars and for each symbol it calls the sign of the next `horizon` bars' return
/// correctly with probability `skill` (it is made by peeking at the generator's future, which
/// is how a model of known accuracy is emulated; the engine sees each row only from its
/// timestamp's close on). Confidence is uniform in [0.5, 1]; strength grows with |return|.
pub fn predictions(m: &SynthMarket, seed: u64, every: usize, horizon: usize, skill: f64) -> Vec<Prediction> {
    let mut g = Gen(ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F0CA_57ED));
    let n = m.series.first().map_or(0, |s| s.ts.len());
    let mut out = Vec::new();
    let mut t = every.max(1) - 1;
    while t + horizon < n {
        for (i, s) in m.series.iter().enumerate() {
            let c = &s.bars.close;
            let r = (c[t + horizon] / c[t]).ln();
            let right = g.uniform() <= skill;
            let truth: i8 = if r >= 0.0 { 1 } else { -1 };
            let dir = if right { truth } else { -truth };
            let conf = 0.5 + 0.5 * g.uniform();
            let scale = r.abs() / (0.01 * (horizon as f64).sqrt());
            let strength = (1.0 + scale).floor().min(4.0) as u8;
            out.push(Prediction { bar: t, sym: i, dir, strength, conf: (conf * 1e4).round() / 1e4 });
        }
        t += every.max(1);
    }
    out
}

struct Gen(ChaCha8Rng);

impl Gen {
    fn uniform(&mut self) -> f64 {
        // (0, 1]: safe for ln.
        1.0 - self.0.gen::<f64>()
    }
    fn normal(&mut self) -> f64 {
        self.0.sample(StandardNormal)
    }
    /// A draw of Student-t `t` (of `dof` > 2 degrees of freedom), scaled to unit variance.
    fn student_t(&mut self, t: &StudentT<f64>, dof: u32) -> f64 {
        let d = dof as f64;
        self.0.sample(t) * ((d - 2.0) / d).sqrt()
    }
}

/// Price rounding to about six significant digits of the first price: `10^(6 - floor(log10 p0))`
/// ticks per unit, applied by division so the stored decimal is the nearest double.
fn ticks_per_unit(p0: f64) -> f64 {
    10f64.powi(6 - p0.log10().floor() as i32)
}

fn round_to(x: f64, per_unit: f64) -> f64 {
    (x * per_unit).round() / per_unit
}

impl SynthConfig {
    /// Check the parameters.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Input(format!("synth: {m}")));
        if self.bars < 2 {
            return bad("bars must be at least 2".into());
        }
        if self.symbols.is_empty() {
            return bad("at least one symbol is needed".into());
        }
        if !(0.0..1.0).contains(&self.correlation) {
            return bad(format!("correlation {} must be in [0, 1)", self.correlation));
        }
        if self.mean_regime_bars < 1.0 {
            return bad("regime-bars must be >= 1".into());
        }
        if self.tail_dof < 3 {
            return bad("tail degrees of freedom must be >= 3 (finite variance)".into());
        }
        if self.garch.0 < 0.0 || self.garch.1 < 0.0 || self.garch.0 + self.garch.1 >= 1.0 {
            return bad("garch alpha, beta must be >= 0 with alpha + beta < 1".into());
        }
        if !(0.0..=1.0).contains(&self.jump_prob) || self.substeps == 0 {
            return bad("jump probability must be in [0, 1] and substeps >= 1".into());
        }
        Ok(())
    }

    /// Generate the market. Deterministic in the seed.
    pub fn generate(&self) -> Result<SynthMarket> {
        self.validate()?;
        let mut g = Gen(ChaCha8Rng::seed_from_u64(self.seed));
        let shocks = StudentT::new(self.tail_dof as f64).map_err(|e| Error::Input(format!("synth: tail_dof: {e}")))?;
        let n_sym = self.symbols.len();
        let per_year = self.timeframe.bars_per_year();
        let (a, b) = self.garch;
        let (rho_f, rho_e) = (self.correlation.sqrt(), (1.0 - self.correlation).sqrt());
        let k = self.substeps;

        let mut series: Vec<SymbolSeries> = self
            .symbols
            .iter()
            .map(|s| SymbolSeries {
                symbol: s.name.clone(),
                source: PathBuf::from("synth"),
                ts: Vec::with_capacity(self.bars),
                bars: Bars::default(),
            })
            .collect();
        let tick: Vec<f64> = self.symbols.iter().map(|s| ticks_per_unit(s.price)).collect();
        let mut log_p: Vec<f64> = self.symbols.iter().map(|s| s.price.ln()).collect();
        let mut regimes = Vec::with_capacity(self.bars);
        let mut variance = Vec::with_capacity(self.bars);
        let mut reg = (g.uniform() * 4.0).floor().min(3.0) as usize;
        let mut h: f64 = 1.0;
        let mut path = vec![0.0; k + 1];
        let mut e = vec![0.0; n_sym];

        for t in 0..self.bars {
            if t > 0 && g.uniform() < 1.0 / self.mean_regime_bars {
                reg = (reg + 1 + (g.uniform() * 3.0).floor().min(2.0) as usize) % 4;
            }
            regimes.push(reg as u8);
            variance.push(h);
            let f = g.student_t(&shocks, self.tail_dof);
            let jump = if g.uniform() < self.jump_prob { Some(-0.01 + 0.04 * g.normal()) } else { None };
            for ei in e.iter_mut() {
                *ei = g.student_t(&shocks, self.tail_dof);
            }
            let ts = self.start + t as i64 * self.timeframe.ms;
            for (i, s) in self.symbols.iter().enumerate() {
                let sigma = self.vol[reg] * s.vol_mult / per_year.sqrt();
                let z = rho_f * f + rho_e * e[i];
                let mut r = self.drift[reg] / per_year + sigma * h.sqrt() * z;
                if let Some(j) = jump {
                    r += j * s.vol_mult;
                }
                // Brownian bridge from 0 to r for the intrabar path.
                let step_sd = sigma * h.sqrt() / (k as f64).sqrt();
                let mut w = 0.0;
                path[0] = 0.0;
                for p in path.iter_mut().skip(1) {
                    w += step_sd * g.normal();
                    *p = w;
                }
                let w_end = path[k];
                let (mut hi, mut lo) = (0.0f64, 0.0f64);
                for (j, p) in path.iter_mut().enumerate() {
                    let frac = j as f64 / k as f64;
                    *p += frac * (r - w_end);
                    hi = hi.max(*p);
                    lo = lo.min(*p);
                }
                let open = round_to(log_p[i].exp(), tick[i]).max(1.0 / tick[i]);
                log_p[i] += r;
                let close = round_to(log_p[i].exp(), tick[i]).max(1.0 / tick[i]);
                let high = round_to(open * hi.exp(), tick[i]).max(open.max(close));
                let low = round_to(open * lo.exp(), tick[i]).min(open.min(close)).max(1.0 / tick[i]);
                let activity = (0.5 + 0.5 * z.abs()) * (sigma * h.sqrt() * per_year.sqrt() / (0.5 * s.vol_mult)).sqrt();
                let notional = s.notional_per_bar * activity * (0.3 * g.normal()).exp();
                let volume = round_to(notional / close, 1e4);
                let sr = &mut series[i];
                sr.ts.push(ts);
                sr.bars.push(open, high, low, close, volume, true);
            }
            h = (1.0 - a - b) + a * h * f * f + b * h;
        }
        Ok(SynthMarket { series, regimes, variance })
    }
}

/// Write a generated market to folder `out`: one bar file per symbol in `format`,
/// `_regimes.csv` (`timestamp,regime`) with the true labels, and `_predictions.csv`, a signal
/// file from a simulated model with 55% directional skill over 24 bars, one row per symbol every
/// 6 bars (see [`predictions`]). The leading `_` keeps the loader from taking them for symbols.
pub fn write_market(m: &SynthMarket, cfg: &SynthConfig, out: &Path, format: OutFormat) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let mut files = Vec::new();
    for s in &m.series {
        files.push(write_bars(s, out, format, cfg.timeframe)?);
    }
    let path = out.join("_regimes.csv");
    let mut w = crate::data::CsvFile::create(&path, ["timestamp", "regime"])?;
    for (t, r) in m.series[0].ts.iter().zip(&m.regimes) {
        w.row(&[&format_ts(*t), &REGIMES[*r as usize]])?;
    }
    w.finish()?;
    files.push(path);
    let path = out.join("_predictions.csv");
    let mut w = crate::data::CsvFile::create(&path, ["timestamp", "symbol", "direction", "strength", "confidence", "source"])?;
    for p in predictions(m, cfg.seed, 6, 24, 0.55) {
        let dir = if p.dir > 0 { "long" } else { "short" };
        w.row(&[&format_ts(m.series[0].ts[p.bar]), &m.series[p.sym].symbol, &dir, &p.strength, &p.conf, &"model"])?;
    }
    w.finish()?;
    files.push(path);
    Ok(files)
}

/// A detector's score on one synthetic market.
#[derive(Debug, Clone, PartialEq)]
pub struct SynthScore {
    /// Over every bar, warm-up included: what a run gets.
    pub all: Accuracy,
    /// Over the bars from `warmup` on, where the configured detector itself labels (before
    /// that the detector's labels are the rules detector's).
    pub after_warmup: Accuracy,
    /// Over the second half of the bars: how the detector does once it has seen each regime
    /// several times, which a detector fitted on past bars cannot have done early on (a regime
    /// not yet seen has no level to be told by).
    pub second_half: Accuracy,
    /// The detector's labels over every bar.
    pub stability: Stability,
    /// The true labels over every bar.
    pub truth: Stability,
}

/// Generate the market `market` describes (`tradelab data synth`'s defaults with its own seed,
/// length, mean regime length, GARCH and jumps), label it, and score the labels against the
/// generator's.
pub fn evaluate_detector(cfg: &RegimeConfig, market: &SynthConfig) -> Result<SynthScore> {
    let m = market.generate()?;
    let md = crate::data::align(&m.series, market.timeframe, crate::data::AlignPolicy::Inner)?;
    let pred = detect(cfg, &md).label;
    let from = cfg.warmup_bars().min(market.bars);
    let half = pred.len() / 2;
    Ok(SynthScore {
        all: accuracy(&m.regimes, &pred),
        after_warmup: accuracy(&m.regimes[from..], &pred[from..]),
        second_half: accuracy(&m.regimes[half..], &pred[half..]),
        stability: stability(&pred),
        truth: stability(&m.regimes),
    })
}
