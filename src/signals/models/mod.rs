//! Model signals (`[[signals.models]]`): a classifier trained walk-forward on causal features,
//! whose predictions are a signal source like any other (direction = the likeliest class,
//! confidence = its calibrated probability), so they combine, weigh, switch off per regime and
//! optimize like the others.
//!
//! **Features** are expressions of the rules language ([`crate::signals::rules`]) that are
//! numbers, each known at bar t from data up to t's close; and, with a `[regime]` table, the
//! regime labels ([`REGIME_FEATURES`]), which its detectors make from past bars only.
//!
//! **Labels** of bar t: `forward`, the sign of `close[t+h] / close[t] - 1` (up, or not up);
//! `triple_barrier`, the first close within `h` bars at or beyond `close[t] * (1 + take_profit)`
//! (up) or `close[t] * (1 - stop_loss)` (down), else flat at `t+h`. A label *ends* at the bar
//! that decides it (the touch, or `t+h`).
//!
//! **Training**, walk-forward with purging and an embargo: the model is refitted at bars r0,
//! r0 + `refit_every`, ...; at refit bar r it may train only on samples whose label ended at or
//! before r - `embargo` (default `horizon`), the latest `train_bars` of them (r0 is the first bar
//! with that many). Their latest `calibration` share is held out: the learner fits on the rest,
//! less the samples whose label ends within `embargo` bars of the held-out slice's start
//! (purged), with features standardised by the fitted samples' mean and deviation; Platt scaling
//! is fitted on the held-out slice. The model then predicts bars r .. the next refit. Per
//! symbol, or one model over every covered symbol's samples (`pooled`).
//!
//! A trained model depends only on its `[[signals.models]]` entry and the data: it is trained
//! once and shared by every optimizer candidate that differs in other fields (a sweep of
//! `decision.min_confidence` never retrains). Same data and entry, same predictions, on any
//! number of threads.

pub mod learn;

use crate::data::MarketData;
use crate::experiment::{ModelLabel, ModelSignal};
use crate::signals::{IndicatorCache, Stream, NONE};
use learn::{Classes, Platt};
use std::collections::BTreeMap;

/// One refit: when, on what, and how it did on the bars it then predicted.
#[derive(Debug, Clone, PartialEq)]
pub struct Refit {
    /// Symbol id, or `None` for a pooled model.
    pub sym: Option<usize>,
    /// The refit bar: predictions from this bar's close.
    pub bar: usize,
    /// The first bar after its predictions (the next refit, or the end of the data).
    pub until: usize,
    /// First and last sample bar of the training window (fit and held-out slice).
    pub train: (usize, usize),
    /// Samples the learner was fitted on, and held out for calibration.
    pub fitted: usize,
    /// Samples held out for calibration.
    pub held_out: usize,
    /// Out of sample, on the predicted bars whose label is known in the data: AUC of "up"
    /// against the rest, accuracy, Brier score, log loss; and how many bars.
    pub auc: f64,
    /// Share of bars whose likeliest class was the true one.
    pub accuracy: f64,
    /// Brier score (squared error summed over classes).
    pub brier: f64,
    /// Mean negative log probability of the true class.
    pub log_loss: f64,
    /// Bars scored.
    pub scored: usize,
    /// Permutation importance of each feature on the held-out slice (the rise in log loss when
    /// its column is shuffled), or on the fitted samples without one.
    pub importance: Vec<f64>,
}

/// What one `[[signals.models]]` entry predicted, per symbol, and its refits.
#[derive(Debug, Clone, Default)]
pub struct ModelOutput {
    /// The experiment key (`signals.models[0]`).
    pub key: String,
    /// The feature expressions.
    pub features: Vec<String>,
    /// The classes, in probability order.
    pub classes: Vec<i8>,
    /// Per symbol id (None where the entry does not apply): per bar, the likeliest class
    /// ([`NONE`] before the first refit or where a feature is unknown), its probability, the
    /// probability of "up", the refit used (index into `refits`, `u32::MAX` none), and the
    /// true label where the data holds it.
    pub per_sym: Vec<Option<SymbolPredictions>>,
    /// Every refit, in order of symbol and bar.
    pub refits: Vec<Refit>,
}

/// One symbol's predictions; see [`ModelOutput::per_sym`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SymbolPredictions {
    /// Likeliest class per bar, or [`NONE`].
    pub class: Vec<i8>,
    /// Its calibrated probability.
    pub prob: Vec<f64>,
    /// Calibrated probability of "up".
    pub p_up: Vec<f64>,
    /// Index of the refit that made it.
    pub refit: Vec<u32>,
    /// The true label, where known ([`NONE`] otherwise).
    pub label: Vec<i8>,
}

const FORWARD: Classes = &[-1, 1];
const BARRIER: Classes = &[-1, 0, 1];

/// Labels of every bar and the bar each ends at (`usize::MAX`: not known in the data).
pub fn labels(cfg: &ModelSignal, close: &[f64]) -> (Vec<i8>, Vec<usize>) {
    let n = close.len();
    let h = cfg.horizon;
    let mut y = vec![NONE; n];
    let mut end = vec![usize::MAX; n];
    for t in 0..n {
        match cfg.label {
            ModelLabel::Forward if t + h < n => {
                y[t] = if close[t + h] > close[t] { 1 } else { -1 };
                end[t] = t + h;
            }
            ModelLabel::Forward => {}
            ModelLabel::TripleBarrier => {
                // A touch inside the data decides the label even when t + h lies beyond it.
                let (up, down) = (close[t] * (1.0 + cfg.take_profit.unwrap_or(0.0)), close[t] * (1.0 - cfg.stop_loss.unwrap_or(0.0)));
                let touch = (t + 1..=(t + h).min(n.saturating_sub(1))).find(|&u| close[u] >= up || close[u] <= down);
                (y[t], end[t]) = match touch {
                    Some(u) if close[u] >= up => (1, u),
                    Some(u) => (-1, u),
                    None if t + h < n => (0, t + h),
                    None => (NONE, usize::MAX),
                };
            }
        }
    }
    (y, end)
}

/// A symbol's inputs: feature rows (None where any feature is unknown), labels and their ends.
struct Inputs {
    rows: Vec<Option<Vec<f64>>>,
    y: Vec<i8>,
    end: Vec<usize>,
}

/// Features that read the regime labels of `[regime]` instead of an expression: 1 on the bars
/// labelled so, else 0 (`regime_bull` ...), and the trend axis' t-statistic.
pub const REGIME_FEATURES: [&str; 5] = ["regime_bull", "regime_bear", "regime_sideways", "regime_high_vol", "regime_trend_t"];

/// Train and predict one `[[signals.models]]` entry (index `index`) for the symbols `syms`,
/// its features computed from `md` through the shared cache; `regime` holds the market-wide
/// columns of [`REGIME_FEATURES`] when the experiment has a `[regime]` table (labels made by a
/// detector that refits on past bars only). Errors: (key, message).
pub fn train(
    cfg: &ModelSignal,
    index: usize,
    md: &MarketData,
    cache: &IndicatorCache,
    syms: &[usize],
    regime: &BTreeMap<&str, Vec<f64>>,
) -> Result<ModelOutput, (String, String)> {
    let key = format!("signals.models[{index}]");
    let params = BTreeMap::new();
    let mut columns = Vec::new();
    for &s in syms {
        let mut cols = Vec::new();
        for (j, f) in cfg.features.iter().enumerate() {
            let fkey = || format!("{key}.features[{j}]");
            if REGIME_FEATURES.contains(&f.trim()) {
                let col = regime
                    .get(f.trim())
                    .ok_or_else(|| (fkey(), format!("{f} reads the labels of a [regime] table, and the experiment has none")))?;
                cols.push(col.clone());
                continue;
            }
            cols.push(crate::signals::rules::number_series(f, md, cache, &params, s).map_err(|m| (fkey(), m))?);
        }
        columns.push((s, cols, md.bars[s].close.as_slice()));
    }
    train_columns(cfg, &key, md.symbols.len(), &columns).map_err(|m| match m.strip_prefix("train_bars: ") {
        Some(m) => (format!("{key}.train_bars"), m.to_string()),
        None => (key.clone(), m),
    })
}

/// One symbol's inputs to [`train_columns`]: its id, one column per feature, its closes.
pub type Columns<'a> = (usize, Vec<Vec<f64>>, &'a [f64]);

/// [`train`] from feature columns already computed: per symbol id, one column per feature (a
/// value per bar) and the closes the labels come from. The walk-forward scheme is the same;
/// what the columns may see is the caller's affair (a leakage test feeds one that peeks).
pub fn train_columns(cfg: &ModelSignal, key: &str, n_symbols: usize, columns: &[Columns<'_>]) -> Result<ModelOutput, String> {
    let classes = if cfg.label == ModelLabel::Forward { FORWARD } else { BARRIER };
    let mut inputs: BTreeMap<usize, Inputs> = BTreeMap::new();
    let mut n = 0;
    for (s, cols, close) in columns {
        n = close.len();
        let rows = (0..n)
            .map(|t| {
                let r: Vec<f64> = cols.iter().map(|c| c[t]).collect();
                r.iter().all(|v| v.is_finite()).then_some(r)
            })
            .collect();
        let (y, end) = labels(cfg, close);
        inputs.insert(*s, Inputs { rows, y, end });
    }
    let mut out = ModelOutput {
        key: key.to_string(),
        features: cfg.features.clone(),
        classes: classes.to_vec(),
        per_sym: vec![None; n_symbols],
        refits: Vec::new(),
    };
    let syms: Vec<usize> = inputs.keys().copied().collect();
    let groups: Vec<Vec<usize>> = if cfg.pooled { vec![syms] } else { syms.iter().map(|&s| vec![s]).collect() };
    for group in groups {
        let sym = (!cfg.pooled).then(|| group[0]);
        walk(cfg, classes, n, &group, &inputs, sym, &mut out)?;
    }
    Ok(out)
}

/// The refit schedule and the predictions of one model (one symbol, or a pooled group).
fn walk(
    cfg: &ModelSignal,
    classes: Classes,
    n: usize,
    group: &[usize],
    inputs: &BTreeMap<usize, Inputs>,
    sym: Option<usize>,
    out: &mut ModelOutput,
) -> Result<(), String> {
    let embargo = cfg.embargo.unwrap_or(cfg.horizon);
    // Samples (bar, symbol) ordered by bar: usable once their label has ended `embargo` bars ago.
    let mut samples: Vec<(usize, usize)> = Vec::new();
    for t in 0..n {
        for &s in group {
            let inp = &inputs[&s];
            if inp.rows[t].is_some() && inp.y[t] != NONE {
                samples.push((t, s));
            }
        }
    }
    let ready = |(t, s): (usize, usize), r: usize| inputs[&s].end[t].checked_add(embargo).is_some_and(|e| e <= r);
    // The first refit: the first bar where `train_bars` samples are usable (a sample is usable
    // from its label's end plus the embargo, which is after its own bar).
    let need = cfg.train_bars;
    let mut ready_at: Vec<usize> = samples.iter().map(|&(t, s)| inputs[&s].end[t].saturating_add(embargo)).collect();
    ready_at.sort_unstable();
    let Some(r0) = ready_at.get(need - 1).copied().filter(|&r| r < n) else {
        let usable = ready_at.iter().filter(|&&r| r < n).count();
        return Err(format!(
            "train_bars: only {usable} samples become usable in these {n} bars (labels {} bars ahead, embargo {embargo}, features known), fewer than train_bars = {need}: the model would never predict",
            cfg.horizon
        ));
    };
    let mut preds: BTreeMap<usize, SymbolPredictions> = group.iter().map(|&s| (s, empty(n, &inputs[&s]))).collect();
    let mut r = r0;
    while r < n {
        let until = (r + cfg.refit_every).min(n);
        let usable: Vec<(usize, usize)> = samples.iter().copied().filter(|&x| x.0 < r && ready(x, r)).collect();
        let window = &usable[usable.len().saturating_sub(need)..];
        let held = ((window.len() as f64) * cfg.calibration).round() as usize;
        let (fit_part, cal) = window.split_at(window.len() - held);
        // Purge: no fitted sample's label may reach into the held-out slice (plus the embargo).
        let cal_start = cal.first().map(|x| x.0);
        let fit_set: Vec<(usize, usize)> = fit_part
            .iter()
            .copied()
            .filter(|&(t, s)| cal_start.is_none_or(|c| inputs[&s].end[t].checked_add(embargo).is_some_and(|e| e < c)))
            .collect();
        if fit_set.len() < 10 {
            return Err(format!(
                "at refit bar {r}: {} samples left to fit after purging; raise train_bars or lower calibration",
                fit_set.len()
            ));
        }
        let raw = |set: &[(usize, usize)]| -> Vec<Vec<f64>> {
            set.iter().map(|&(t, s)| inputs[&s].rows[t].clone().expect("a full row")).collect()
        };
        let (xf, yf): (Vec<Vec<f64>>, Vec<i8>) = (raw(&fit_set), fit_set.iter().map(|&(t, s)| inputs[&s].y[t]).collect());
        let scaler = Scaler::fit(&xf);
        let xs = scaler.apply_all(&xf);
        let seed = cfg.seed ^ (r as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ sym.map_or(u64::MAX, |s| s as u64);
        let model = learn::fit(cfg, &xs, &yf, seed)?;
        let (xc, yc): (Vec<Vec<f64>>, Vec<i8>) = (scaler.apply_all(&raw(cal)), cal.iter().map(|&(t, s)| inputs[&s].y[t]).collect());
        let platt = (yc.len() >= 20).then(|| Platt::fit(&model.predict(&xc, classes), &yc, classes));
        let calibrate = |p: Vec<f64>| platt.as_ref().map_or(p.clone(), |c| c.apply(&p));
        // Importance where the model was not fitted when there is such a slice.
        let (xi, yi) = if yc.len() >= 20 { (&xc, &yc) } else { (&xs, &yf) };
        let importance = permutation_importance(&model, xi, yi, classes, seed, &calibrate);
        let refit_id = out.refits.len() as u32;
        let (mut scored_p, mut scored_y) = (Vec::new(), Vec::new());
        for &s in group {
            let inp = &inputs[&s];
            let pr = preds.get_mut(&s).expect("a symbol of the group");
            let rows: Vec<usize> = (r..until).filter(|&t| inp.rows[t].is_some()).collect();
            let x: Vec<Vec<f64>> = rows.iter().map(|&t| scaler.apply(inp.rows[t].as_ref().expect("a full row"))).collect();
            for (&t, p) in rows.iter().zip(model.predict(&x, classes)) {
                let p = calibrate(p);
                let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]).then(b.cmp(&a))).unwrap_or(0);
                pr.class[t] = classes[best];
                pr.prob[t] = p[best];
                pr.p_up[t] = p[classes.len() - 1];
                pr.refit[t] = refit_id;
                if inp.y[t] != NONE {
                    scored_p.push(p);
                    scored_y.push(inp.y[t]);
                }
            }
        }
        let (auc, accuracy, brier, log_loss) = learn::scores(&scored_p, &scored_y, classes);
        out.refits.push(Refit {
            sym,
            bar: r,
            until,
            train: (window.first().map_or(0, |x| x.0), window.last().map_or(0, |x| x.0)),
            fitted: fit_set.len(),
            held_out: cal.len(),
            auc,
            accuracy,
            brier,
            log_loss,
            scored: scored_y.len(),
            importance,
        });
        r = until;
    }
    for (s, p) in preds {
        out.per_sym[s] = Some(p);
    }
    Ok(())
}

fn empty(n: usize, inp: &Inputs) -> SymbolPredictions {
    SymbolPredictions {
        class: vec![NONE; n],
        prob: vec![f64::NAN; n],
        p_up: vec![f64::NAN; n],
        refit: vec![u32::MAX; n],
        label: inp.y.clone(),
    }
}

/// Standardisation by the fitted samples' mean and (population) deviation; a constant column
/// is centred only.
struct Scaler {
    mean: Vec<f64>,
    sd: Vec<f64>,
}

impl Scaler {
    fn fit(x: &[Vec<f64>]) -> Scaler {
        let d = x.first().map_or(0, Vec::len);
        let n = x.len().max(1) as f64;
        let mean: Vec<f64> = (0..d).map(|j| x.iter().map(|r| r[j]).sum::<f64>() / n).collect();
        let sd = (0..d)
            .map(|j| {
                let v = (x.iter().map(|r| (r[j] - mean[j]).powi(2)).sum::<f64>() / n).sqrt();
                if v > 0.0 {
                    v
                } else {
                    1.0
                }
            })
            .collect();
        Scaler { mean, sd }
    }
    fn apply(&self, r: &[f64]) -> Vec<f64> {
        r.iter().zip(self.mean.iter().zip(&self.sd)).map(|(v, (m, s))| (v - m) / s).collect()
    }
    fn apply_all(&self, x: &[Vec<f64>]) -> Vec<Vec<f64>> {
        x.iter().map(|r| self.apply(r)).collect()
    }
}

/// The rise in log loss when each column is shuffled (a fixed permutation per column).
fn permutation_importance(
    model: &learn::Fitted,
    x: &[Vec<f64>],
    y: &[i8],
    classes: Classes,
    seed: u64,
    calibrate: &dyn Fn(Vec<f64>) -> Vec<f64>,
) -> Vec<f64> {
    use rand::seq::SliceRandom;
    use rand::SeedableRng;
    let loss = |x: &[Vec<f64>]| {
        let p: Vec<Vec<f64>> = model.predict(x, classes).into_iter().map(calibrate).collect();
        learn::scores(&p, y, classes).3
    };
    let base = loss(x);
    let d = x.first().map_or(0, Vec::len);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    (0..d)
        .map(|j| {
            let mut col: Vec<f64> = x.iter().map(|r| r[j]).collect();
            col.shuffle(&mut rng);
            let shuffled: Vec<Vec<f64>> = x
                .iter()
                .zip(&col)
                .map(|(r, v)| {
                    let mut r = r.clone();
                    r[j] = *v;
                    r
                })
                .collect();
            loss(&shuffled) - base
        })
        .collect()
}

/// The signal stream of one symbol's predictions.
pub fn stream(cfg: &ModelSignal, p: &SymbolPredictions) -> Stream {
    Stream {
        source: cfg.source.clone().unwrap_or_else(|| "model".into()),
        dir: p.class.clone(),
        strength: vec![cfg.strength as u8 + 1],
        conf: p.prob.iter().map(|v| if v.is_nan() { 0.0 } else { *v }).collect(),
        acts: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(label: ModelLabel) -> ModelSignal {
        let text = match label {
            ModelLabel::Forward => "features = [\"close\"]\nhorizon = 2\n",
            ModelLabel::TripleBarrier => {
                "features = [\"close\"]\nhorizon = 3\nlabel = \"triple_barrier\"\ntake_profit = 0.05\nstop_loss = 0.05\n"
            }
        };
        toml::from_str(text).unwrap()
    }

    #[test]
    fn labels_by_hand() {
        let close = [100.0, 101.0, 99.0, 106.0, 104.0, 94.0];
        let (y, end) = labels(&cfg(ModelLabel::Forward), &close);
        // t=0: 99 > 100? no; t=1: 106 > 101 yes; t=2: 104 > 99 yes; t=3: 94 > 106 no.
        assert_eq!(y, vec![-1, 1, 1, -1, NONE, NONE]);
        assert_eq!(&end[..4], &[2, 3, 4, 5]);
        let (y, end) = labels(&cfg(ModelLabel::TripleBarrier), &close);
        // t=0: barriers 105 / 95 -> 106 at bar 3 (up); t=1: 106.05 / 95.95 -> none in 2..=4 (flat at 4);
        // t=2: 103.95 / 94.05 -> 106 at 3 (up).
        assert_eq!(&y[..3], &[1, 0, 1]);
        assert_eq!(&end[..3], &[3, 4, 3]);
        // t=3: 106 -> 94 at bar 5 is below 100.7, inside the data though 3 + 3 is not: down.
        // t=4: 104 -> 94 at bar 5 is below 98.8: down. t=5: nothing after it: unknown.
        assert_eq!(&y[3..], &[-1, -1, NONE]);
        assert_eq!(&end[3..], &[5, 5, usize::MAX]);
    }
}
