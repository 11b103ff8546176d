//! The particle-filter detector labels from the past only (its own file: a run of it takes some
//! seconds whatever the length, and the other regime tests share a file).

mod common;
use common::*;

#[test]
fn particle_filter_labels_from_the_past_only() {
    // Its accuracy against a floor is measured by research/'s detector_floors (minutes).
    // A 300-bar warm-up and one symbol keep it short: a fit at bar 300, the cut after it.
    let cfg = tradelab::experiment::RegimeConfig { detector: tradelab::experiment::Detector::Pf, warmup: Some(300), ..Default::default() };
    let mut sc = tradelab::synth::SynthConfig { seed: 3, bars: 700, mean_regime_bars: 100.0, ..Default::default() };
    sc.symbols.truncate(1);
    let m = sc.generate().unwrap();
    assert_labels_from_the_past_only(&cfg, &m, sc.timeframe, 500);
}
