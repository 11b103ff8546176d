//! Each regime detector against a floor on markets from `tradelab data synth`'s generator: the
//! default HMM and MS-GARCH at 300-bar regimes (seed 7) and the particle filter at 200-bar
//! regimes (seed 3). Chance is 25% balanced accuracy; a merged regime would show as a recall
//! near 0. These take minutes (the particle filter most), so they are measurements, not tests.
//! Exits 1 if a detector falls below its floor.
//! Run: cargo run --release -p tradelab-research --bin detector_floors

use tradelab::experiment::{Detector, RegimeConfig};
use tradelab::regime::HIGH_VOL;
use tradelab::synth::{evaluate_detector, SynthConfig};

fn main() {
    let market = |mean_bars: f64, seed: u64, bars: usize| SynthConfig { seed, bars, mean_regime_bars: mean_bars, ..Default::default() };
    let mut ok = true;
    for (name, detector, sc, floor) in
        [("ms_garch", Detector::MsGarch, market(300.0, 7, 17_520), 0.55), ("pf", Detector::Pf, market(200.0, 3, 8_000), 0.6)]
    {
        let cfg = RegimeConfig { detector, ..Default::default() };
        let s = evaluate_detector(&cfg, &sc).expect("valid defaults");
        let (a, w) = (&s.all, &s.after_warmup);
        let pass = a.balanced > floor && w.recall.iter().all(|r| *r > 0.25) && a.recall[HIGH_VOL as usize] > 0.7;
        ok &= pass;
        println!(
            "{name:9} balanced {:.1}% (after warm-up {:.1}%), recall {:?}: {}",
            100.0 * a.balanced,
            100.0 * w.balanced,
            a.recall.map(|r| (1000.0 * r).round() / 10.0),
            if pass { "ok" } else { "BELOW THE FLOOR" }
        );
    }
    std::process::exit(if ok { 0 } else { 1 });
}
