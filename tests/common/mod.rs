//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::Arc;
use tradelab::data::{Bars, MarketData, Timeframe};
use tradelab::engine::Prepared;
use tradelab::experiment::Experiment;
use tradelab::signals::{Combined, NONE};

/// `../shared/data/<rel>`, for the tests marked `#[ignore = "needs ../shared/data"]` (CI runs
/// them with `--include-ignored`); a failure naming the path when it is missing.
pub fn shared(rel: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/data").join(rel);
    assert!(p.exists(), "{} is missing: this test needs ../shared beside the checkout", p.display());
    p
}

/// A fresh empty folder under the target dir.
pub fn tmp_dir(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// One bar: open, high, low, close, volume.
pub type Ohlcv = (f64, f64, f64, f64, f64);

/// One-symbol hourly market from (open, high, low, close, volume) rows.
pub fn market(rows: &[(f64, f64, f64, f64, f64)]) -> MarketData {
    multi(&[rows])
}

/// Several symbols on one hourly clock.
pub fn multi(syms: &[&[Ohlcv]]) -> MarketData {
    let n = syms[0].len();
    let bars = syms
        .iter()
        .map(|rows| {
            let mut b = Bars::default();
            for &(o, h, l, c, v) in rows.iter() {
                b.push(o, h, l, c, v, true);
            }
            b
        })
        .collect();
    MarketData {
        timeframe: Timeframe::from_ms(3_600_000),
        timestamps: (0..n as i64).map(|i| 1_704_067_200_000 + i * 3_600_000).collect(),
        symbols: (0..syms.len()).map(|i| format!("S{i}")).collect(),
        bars,
        calendar: None,
    }
}

/// Combined signal from per-bar directions (`None` = no signal), full strength and confidence.
pub fn signal(dirs: &[Option<i8>]) -> Combined {
    Combined::new(dirs.iter().map(|d| d.unwrap_or(NONE)).collect(), vec![4; dirs.len()], vec![1.0; dirs.len()])
}

/// Prepared inputs from a market and one combined signal per symbol.
pub fn prepared(md: MarketData, combined: Vec<Combined>) -> Prepared {
    let ns = md.symbols.len();
    Prepared {
        md: Arc::new(md),
        combined,
        vol: Vec::new(),
        per_year: 8760.0,
        atr: Vec::new(),
        corr: Vec::new(),
        lots: Vec::new(),
        rebalance: None,
        regime: None,
        warnings: Vec::new(),
        drivers: vec![None; ns],
        cache: Default::default(),
        models: Vec::new(),
    }
}

/// An experiment from TOML body text (the `[experiment]` and `[data]` tables are added).
pub fn exp(body: &str) -> Experiment {
    let text = format!("[experiment]\nname = \"t\"\n[data]\npath = \"unused\"\n{body}");
    Experiment::from_toml(&text, std::path::Path::new("test.toml")).unwrap()
}

pub fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * (1.0 + a.abs().max(b.abs()))
}

/// Cutting market `m` after bar `cut` (past a refit) leaves every earlier label of `cfg`'s
/// detector as it was, and the fitted labels move.
pub fn assert_labels_from_the_past_only(
    cfg: &tradelab::experiment::RegimeConfig,
    m: &tradelab::synth::SynthMarket,
    tf: tradelab::data::Timeframe,
    cut: usize,
) -> Vec<u8> {
    let full = tradelab::data::align(&m.series, tf, tradelab::data::AlignPolicy::Inner).unwrap();
    let short: Vec<_> = m
        .series
        .iter()
        .map(|s| {
            let mut c = s.clone();
            c.ts.truncate(cut);
            let b = &s.bars;
            c.bars = tradelab::data::Bars {
                open: b.open[..cut].to_vec(),
                high: b.high[..cut].to_vec(),
                low: b.low[..cut].to_vec(),
                close: b.close[..cut].to_vec(),
                volume: b.volume[..cut].to_vec(),
                tradable: b.tradable[..cut].to_vec(),
            };
            c
        })
        .collect();
    let short = tradelab::data::align(&short, tf, tradelab::data::AlignPolicy::Inner).unwrap();
    let (lf, lc) = (tradelab::regime::detect(cfg, &full), tradelab::regime::detect(cfg, &short));
    assert_eq!(lc.label.len(), cut);
    assert_eq!(&lf.label[..cut], &lc.label[..]);
    assert_eq!(&lf.volatility[..cut], &lc.volatility[..]);
    assert_eq!(
        lf.trend_t[..cut].iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
        lc.trend_t.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
    );
    let (lf, lc) = (tradelab::regime::detect_states(cfg, &full), tradelab::regime::detect_states(cfg, &short));
    assert_eq!(&lf[..cut], &lc[..]);
    let from = cfg.warmup_bars();
    assert!(lc[from..].iter().any(|l| *l != lc[from]), "the fitted labels move");
    lf
}
