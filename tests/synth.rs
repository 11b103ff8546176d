//! The synthetic market: reproducible to the byte, and with the statistics it was asked for.

mod common;
use common::*;
use tradelab::regime::REGIMES;
use tradelab::synth::SynthConfig;

#[test]
fn bundled_data_regenerates_byte_for_byte() {
    // The exact command in data/README.md.
    let out = tmp_dir("synth_regen").join("synth");
    let st = std::process::Command::new(env!("CARGO_BIN_EXE_tradelab")).args(["-q", "data", "synth", "--out"]).arg(&out).status().unwrap();
    assert!(st.success());
    let bundled = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/synth");
    let mut names: Vec<_> = std::fs::read_dir(&bundled).unwrap().map(|e| e.unwrap().file_name()).collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for n in names {
        let a = std::fs::read(bundled.join(&n)).unwrap();
        let b = std::fs::read(out.join(&n)).unwrap_or_else(|_| panic!("{n:?} not regenerated"));
        assert!(a == b, "{n:?} differs from its regenerated copy");
    }
}

fn log_returns(c: &[f64]) -> Vec<f64> {
    c.windows(2).map(|w| (w[1] / w[0]).ln()).collect()
}

fn mean_sd(x: &[f64]) -> (f64, f64) {
    let m = x.iter().sum::<f64>() / x.len() as f64;
    (m, (x.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (x.len() - 1) as f64).sqrt())
}

#[test]
fn statistics_are_what_was_asked_for() {
    let cfg = SynthConfig { bars: 400_000, jump_prob: 0.0, seed: 7, ..SynthConfig::default() };
    let m = cfg.generate().unwrap();
    let per_year = cfg.timeframe.bars_per_year();
    let r0 = log_returns(&m.series[0].bars.close);
    let r1 = log_returns(&m.series[1].bars.close);
    for (k, name) in REGIMES.iter().enumerate() {
        // Return of bar t belongs to the regime of bar t (index t+1 in the bar series).
        let x: Vec<f64> = r0.iter().enumerate().filter(|(t, _)| m.regimes[t + 1] as usize == k).map(|(_, r)| *r).collect();
        assert!(x.len() > 50_000, "{name}: {} bars", x.len());
        let (mu, sd) = mean_sd(&x);
        let want_sd = cfg.vol[k] / per_year.sqrt();
        let want_mu = cfg.drift[k] / per_year;
        assert!((sd / want_sd - 1.0).abs() < 0.1, "{name}: vol {sd} vs {want_sd}");
        // Mean within 5 standard errors (prices are rounded to ~6 digits: negligible here).
        assert!((mu - want_mu).abs() < 5.0 * sd / (x.len() as f64).sqrt(), "{name}: drift {mu} vs {want_mu}");
    }
    // Cross-asset correlation of returns.
    let (m0, s0) = mean_sd(&r0);
    let (m1, s1) = mean_sd(&r1);
    let cov = r0.iter().zip(&r1).map(|(a, b)| (a - m0) * (b - m1)).sum::<f64>() / (r0.len() - 1) as f64;
    let rho = cov / (s0 * s1);
    assert!((rho - cfg.correlation).abs() < 0.03, "correlation {rho}");
    // Fat tails: excess kurtosis well above a normal's 0.
    let k4 = r0.iter().map(|r| ((r - m0) / s0).powi(4)).sum::<f64>() / r0.len() as f64 - 3.0;
    assert!(k4 > 1.0, "excess kurtosis {k4}");
    // Regimes last about as long as asked.
    let switches = m.regimes.windows(2).filter(|w| w[0] != w[1]).count();
    let mean_len = m.regimes.len() as f64 / (switches + 1) as f64;
    assert!((mean_len / cfg.mean_regime_bars - 1.0).abs() < 0.15, "mean regime length {mean_len}");
    // Bars are valid OHLC.
    for s in &m.series {
        let b = &s.bars;
        for i in 0..b.len() {
            assert!(
                b.high[i] >= b.open[i].max(b.close[i]) && b.low[i] <= b.open[i].min(b.close[i]) && b.low[i] > 0.0 && b.volume[i] >= 0.0
            );
        }
    }
}

#[test]
fn same_seed_same_market_other_seed_other_market() {
    let a = SynthConfig { bars: 1000, ..SynthConfig::default() }.generate().unwrap();
    let b = SynthConfig { bars: 1000, ..SynthConfig::default() }.generate().unwrap();
    let c = SynthConfig { bars: 1000, seed: 43, ..SynthConfig::default() }.generate().unwrap();
    assert_eq!(a.series, b.series);
    assert_ne!(a.series[0].bars.close, c.series[0].bars.close);
    assert!(close(a.series[0].bars.open[0], 30_000.0, 1e-12));
}
