//! Rebalancing against hand-worked trades (fees, lot sizes, band edge), bands that hold still,
//! cash that never goes negative; regime overrides switching on the bar after the label; the
//! detector's accuracy on a seeded synthetic market; errors that name their key.

mod common;
use common::*;
use std::sync::Arc;
use tradelab::engine::{backtest, prepare, Prepared, RegimePrep};
use tradelab::experiment::{Experiment, LoadedExperiment};
use tradelab::portfolio::Reason;

fn flat(p: f64) -> Ohlcv {
    (p, p, p, p, 1e9)
}

fn prep(e: &Experiment, md: tradelab::data::MarketData) -> Prepared {
    let le = LoadedExperiment { exp: e.clone(), file: "test.toml".into() };
    prepare(&le, Arc::new(md), &Default::default()).unwrap()
}

/// S0 at 100 then 150 from bar 3; S1 at 50 throughout.
fn two_assets() -> tradelab::data::MarketData {
    let s0: Vec<Ohlcv> = (0..6).map(|t| flat(if t < 3 { 100.0 } else { 150.0 })).collect();
    let s1: Vec<Ohlcv> = vec![flat(50.0); 6];
    multi(&[&s0, &s1])
}

const SIXTY_FORTY: &str = "[portfolio]\ninitial_cash = 10000\n[rebalance]\ntargets = { S0 = 0.6, S1 = 0.4 }\nband = 0.05\n";

#[test]
fn sixty_forty_with_fees_and_lot_sizes_by_hand() {
    let e = exp(&format!("{SIXTY_FORTY}[execution]\nfee_bps = 10\nlot_sizes = {{ S0 = 0.1, S1 = 1.0 }}\n"));
    let r = backtest(&e, &prep(&e, two_assets()));
    let f = 0.001;
    let lot = |q: f64, l: f64| q.signum() * (q.abs() / l + 1e-9).floor() * l;
    // Bar 0 allocates; bar 1's open fills: S0 first (60% of equity with room for its fee,
    // 59.94 units, rounded down to the lot), then S1 on the equity then, in whole units.
    let q0 = lot(0.6 * 10_000.0 / (100.0 * (1.0 + f)), 0.1);
    assert!(close(q0, 59.9, 1e-12));
    let mut cash = 10_000.0 - q0 * 100.0 * (1.0 + f);
    let eq = cash + q0 * 100.0;
    let q1 = lot((0.4 * eq / (50.0 * (1.0 + f))).min(cash / (50.0 * (1.0 + f))), 1.0);
    cash -= q1 * 50.0 * (1.0 + f);
    assert_eq!(r.fills[0].reason, Reason::Rebalance);
    assert!(close(r.fills[0].qty, q0, 1e-12) && close(r.fills[1].qty, q1, 1e-12), "{:?}", &r.fills[..2]);
    assert!(close(r.cash[1], cash, 1e-12));
    // S1's whole-unit lot (50 = 0.5% of equity) leaves it off target by more than the 0.2-point
    // tolerance: one of two symbols within.
    let first = &r.rebalances[0];
    let w1 = q1 * 50.0 / (cash + q0 * 100.0 + q1 * 50.0);
    assert!((w1 - 0.4).abs() > 0.002);
    assert_eq!((first.within, first.checked, first.accurate()), (1, 2, false));
    // Bar 3: S0 at 150 is 69% of the book, outside 60 +- 5: back to target at bar 4's open,
    // the sale first so its cash pays for the purchase.
    let eq = cash + q0 * 150.0 + q1 * 50.0;
    assert!((q0 * 150.0 / eq - 0.6) > 0.05);
    // Reducing S0: the position left plus the sale's fee fits in 60% of equity; lots round the
    // position, and the order is the difference.
    let sell = lot((0.6 * eq - f * 150.0 * q0) / (150.0 * (1.0 - f)), 0.1) - q0;
    cash += -sell * 150.0 * (1.0 - f);
    let eq = cash + (q0 + sell) * 150.0 + q1 * 50.0;
    let buy = (lot((0.4 * eq + f * 50.0 * q1) / (50.0 * (1.0 + f)), 1.0) - q1).min(lot(cash / (50.0 * (1.0 + f)), 1.0));
    cash -= buy * 50.0 * (1.0 + f);
    assert_eq!(r.rebalances.len(), 2);
    assert_eq!(r.rebalances[1].bar, 3);
    assert_eq!((r.fills[2].bar, r.fills[3].bar), (4, 4));
    assert!(close(r.fills[2].qty, sell, 1e-12) && close(r.fills[3].qty, buy, 1e-12), "{:?}", &r.fills[2..]);
    assert!(close(r.cash[4], cash, 1e-12));
    // Costs: fees only (no slippage), accounted after and estimated before.
    let paid: f64 = r.fills.iter().map(|x| x.fee).sum();
    assert!(close(r.rebalances.iter().map(|x| x.cost).sum::<f64>(), paid, 1e-12));
    assert!(r.cash.iter().all(|c| *c >= 0.0));
}

#[test]
fn an_order_the_first_pass_s_fees_turn_into_a_sale_fills_on_its_own_bar() {
    // 50/25/25 at 1% fees, fills at the close. Bar 1: S1 rises to 150 (outside its band), S2
    // falls so that S0 sits just under its 50% (by 1e-5 of equity). The book's first pass sells
    // S1; its fee lowers equity, so S0, which was to add, must now sell a little: it is still
    // this rebalance's order and fills at bar 1, not a bar later.
    let f = 0.01f64;
    let (mut cash, e0) = (10_000.0f64, 10_000.0);
    // Bar 0 from cash: each position plus its fee is its share of the equity at that moment.
    let q0 = 0.5 * e0 / (100.0 * (1.0 + f));
    cash -= q0 * 100.0 * (1.0 + f);
    let q1 = 0.25 * (cash + q0 * 100.0) / (100.0 * (1.0 + f));
    cash -= q1 * 100.0 * (1.0 + f);
    let q2 = (0.25 * (cash + (q0 + q1) * 100.0) / (100.0 * (1.0 + f))).min(cash / (100.0 * (1.0 + f)));
    cash -= q2 * 100.0 * (1.0 + f);
    let e1 = q0 * 100.0 / (0.5 - 1e-5);
    let p2 = (e1 - cash - q0 * 100.0 - q1 * 150.0) / q2;
    assert!(p2 > 0.0 && p2 < 100.0);
    let s0 = vec![flat(100.0); 3];
    let s1 = vec![flat(100.0), flat(150.0), flat(150.0)];
    let s2 = vec![flat(100.0), flat(p2), flat(p2)];
    let e = exp("[portfolio]\ninitial_cash = 10000\n[rebalance]\ntargets = { S0 = 0.5, S1 = 0.25, S2 = 0.25 }\nband = 0.05\n[execution]\nfill = \"close\"\nfee_bps = 100\n");
    let r = backtest(&e, &prep(&e, multi(&[&s0, &s1, &s2])));
    // S1's sale: the position left plus the sale's fee is 25% of equity.
    let q1_after = (0.25 * e1 - f * 150.0 * q1) / (150.0 * (1.0 - f));
    let eq = e1 - (q1 - q1_after) * 150.0 * f;
    // S0 at the equity left: (0.5 * eq - f * 100 * q0) / (100 * (1 - f)) units, below q0.
    let q0_after = (0.5 * eq - f * 100.0 * q0) / (100.0 * (1.0 - f));
    assert!(q0_after < q0);
    let at1: Vec<_> = r.fills.iter().filter(|x| x.bar == 1).map(|x| (x.sym, x.qty)).collect();
    assert_eq!(at1.len(), 3, "{:?}", r.fills);
    assert!(at1.iter().any(|&(s, q)| s == 1 && close(q, q1_after - q1, 1e-9)), "{at1:?}");
    assert!(at1.iter().any(|&(s, q)| s == 0 && close(q, q0_after - q0, 1e-9)), "{at1:?}");
    assert!(r.fills.iter().all(|x| x.bar != 2), "nothing is left for bar 2: {:?}", r.fills);
    assert!(r.orders.iter().all(|o| o.status == tradelab::execution::Status::Filled), "{:?}", r.orders);
}

#[test]
fn accuracy_is_judged_at_the_fill_prices_not_after_the_market_moves() {
    // 50/50 from cash. S0's 50 units fill at bar 1's open (100); S1's 100 units at 50 fill 60 at
    // bar 1 (its volume caps them) and 40 at bar 2, whose open has S0 at 200. At its fill prices
    // the book is 5,000 + 5,000: on target. Valued at bar 2's prices S0 would be 2/3 of it.
    let e = exp("[portfolio]\ninitial_cash = 10000\n[rebalance]\ntargets = { S0 = 0.5, S1 = 0.5 }\nband = 0.05\n[execution]\nfee_bps = 0\nmax_participation = 1.0\n");
    let s0: Vec<Ohlcv> = (0..4).map(|t| flat(if t < 2 { 100.0 } else { 200.0 })).collect();
    let mut s1: Vec<Ohlcv> = vec![flat(50.0); 4];
    s1[1].4 = 60.0;
    let r = backtest(&e, &prep(&e, multi(&[&s0, &s1])));
    let fills: Vec<(usize, usize, f64)> = r.fills.iter().map(|f| (f.bar, f.sym, f.qty)).collect();
    assert_eq!(fills[..3], [(1, 0, 50.0), (1, 1, 60.0), (2, 1, 40.0)]);
    let rb = &r.rebalances[0];
    assert_eq!(rb.settled, Some(2));
    assert!(rb.accurate() && rb.max_dev < 1e-12, "{rb:?}");
}

#[test]
fn no_rebalance_inside_the_band() {
    // S0 rises to 110: 6,600 / 10,600 = 62.3%, inside 60 +- 5.
    let e = exp(&format!("{SIXTY_FORTY}[execution]\nfee_bps = 0\n"));
    let s0: Vec<Ohlcv> = (0..8).map(|t| flat(if t < 3 { 100.0 } else { 110.0 })).collect();
    let s1 = vec![flat(50.0); 8];
    let r = backtest(&e, &prep(&e, multi(&[&s0, &s1])));
    assert_eq!(r.rebalances.len(), 1);
    assert_eq!(r.fills.len(), 2);
    // Fee-free, lot-free: the initial allocation lands exactly on target.
    assert!(r.rebalances[0].accurate() && r.rebalances[0].max_dev < 1e-12);
}

#[test]
fn trade_to_band_edge_stops_tolerance_inside_the_band() {
    let e = exp(&format!("{SIXTY_FORTY}trade_to = \"band_edge\"\ntolerance = 0.001\n[execution]\nfee_bps = 0\n"));
    let r = backtest(&e, &prep(&e, two_assets()));
    // After bar 1: 60 S0 and 80 S1, no cash. At bar 3's close S0 = 9,000 of 13,000.
    let eq = 60.0 * 150.0 + 80.0 * 50.0;
    let aim0 = 0.6 + 0.05 - 0.001;
    let aim1 = 0.4 - 0.05 + 0.001;
    assert_eq!(r.rebalances[1].aims, vec![aim0, aim1]);
    assert!(close(r.fills[2].qty, aim0 * eq / 150.0 - 60.0, 1e-12));
    assert!(close(r.fills[3].qty, aim1 * eq / 50.0 - 80.0, 1e-12));
    assert!(r.rebalances[1].accurate());
}

#[test]
fn calendar_and_min_trade() {
    // Every 2 bars, trading to target; S0 drifts 1% a bar, so each check trades unless the
    // trade is under min_trade.
    let s0: Vec<Ohlcv> = (0..7).map(|t| flat(100.0 * 1.01f64.powi(t))).collect();
    let s1 = vec![flat(50.0); 7];
    let md = multi(&[&s0, &s1]);
    let e = exp("[rebalance]\ntargets = { S0 = 0.5, S1 = 0.5 }\nevery_bars = 2\n[execution]\nfee_bps = 0\n");
    let r = backtest(&e, &prep(&e, md.clone()));
    let bars: Vec<usize> = r.rebalances.iter().map(|x| x.bar).collect();
    assert_eq!(bars, vec![0, 2, 4, 6]);
    // A 2% move of half the book is about 1% of 10,000 = 100 per side: under a 150 minimum.
    let e = exp("[rebalance]\ntargets = { S0 = 0.5, S1 = 0.5 }\nevery_bars = 2\nmin_trade = 150\n[execution]\nfee_bps = 0\n");
    let r = backtest(&e, &prep(&e, md));
    assert_eq!(r.rebalances.len(), 1);
}

#[test]
fn regime_override_takes_effect_on_the_bar_after_the_label_changes() {
    let e = exp("[execution]\nfee_bps = 0\n[regime]\n[regime.overrides.high_vol]\ndecision.fraction = 0.25\n");
    let variants = tradelab::regime::variants(&e, "test.toml".as_ref()).unwrap();
    let hv = variants[tradelab::regime::HIGH_VOL as usize].clone().unwrap();
    assert_eq!(hv.decision.fraction, 0.25);
    // Long from bar 0; the label turns high_vol at bar 5's close.
    let dirs = vec![Some(1); 10];
    let mut p = prepared(market(&vec![flat(100.0); 10]), vec![signal(&dirs)]);
    let pv = prepared(market(&vec![flat(100.0); 10]), vec![signal(&dirs)]);
    let mut labels = vec![tradelab::regime::BULL; 10];
    labels[5..].fill(tradelab::regime::HIGH_VOL);
    p.regime = Some(RegimePrep {
        labels: Arc::new(tradelab::regime::Labels::given(labels)),
        variants: vec![(hv, pv)],
        which: [None, None, None, Some(0)],
    });
    let r = backtest(&e, &p);
    // All in at bar 1's open (100 units), down to a quarter at bar 6's open.
    assert_eq!(r.fills.len(), 2);
    assert!(close(r.fills[0].qty, 100.0, 1e-12) && r.fills[0].bar == 1);
    assert!(close(r.fills[1].qty, -75.0, 1e-12) && r.fills[1].bar == 6);
    assert_eq!(r.regime_switches, 1);
}

#[test]
fn stats_count_label_changes_apart_from_parameter_switches() {
    let e = exp("[execution]\nfee_bps = 0\n[regime]\n[regime.overrides.high_vol]\ndecision.fraction = 0.25\n");
    let variants = tradelab::regime::variants(&e, "test.toml".as_ref()).unwrap();
    let hv = variants[tradelab::regime::HIGH_VOL as usize].clone().unwrap();
    let dirs = vec![Some(1); 10];
    let mut p = prepared(market(&vec![flat(100.0); 10]), vec![signal(&dirs)]);
    let pv = prepared(market(&vec![flat(100.0); 10]), vec![signal(&dirs)]);
    // bull x3, bear x2, bull x2, high_vol x3: three label changes, but only the last one moves
    // to another parameter set (bull and bear both run the base); runs 2, 2, 3, 3 have median
    // 2.5.
    use tradelab::regime::{BEAR, BULL, HIGH_VOL};
    let labels = vec![BULL, BULL, BULL, BEAR, BEAR, BULL, BULL, HIGH_VOL, HIGH_VOL, HIGH_VOL];
    p.regime = Some(RegimePrep {
        labels: Arc::new(tradelab::regime::Labels::given(labels)),
        variants: vec![(hv, pv)],
        which: [None, None, None, Some(0)],
    });
    let r = backtest(&e, &p);
    let st = tradelab::engine::summarize(&p, &r).regime.unwrap();
    assert_eq!((st.regime_switches, st.regime_label_changes), (1, 3));
    assert_eq!(st.regime_median_label_bars, 2.5);
    assert_eq!(st.regime_shares, [0.5, 0.2, 0.0, 0.3]);
}

/// `tradelab data synth`'s defaults with `mean_bars` regimes and `seed`.
fn synth_market(mean_bars: f64, seed: u64) -> tradelab::synth::SynthConfig {
    tradelab::synth::SynthConfig { seed, bars: 17_520, mean_regime_bars: mean_bars, ..Default::default() }
}

#[test]
fn ms_garch_keeps_the_volatility_states_apart_on_a_market_without_garch() {
    // Without a shared GARCH variance the generator's regimes differ by volatility level alone
    // (sideways 30%, bull 50%, bear 60%, high_vol 120% a year): MS-GARCH's states, ranked by
    // volatility, find each more often than chance (25%), high_vol far more.
    let cfg = tradelab::experiment::RegimeConfig::default();
    assert_eq!(cfg.detector, tradelab::experiment::Detector::MsGarch);
    let sc = tradelab::synth::SynthConfig { garch: (0.0, 0.0), ..synth_market(200.0, 2) };
    let m = sc.generate().unwrap();
    let md = tradelab::data::align(&m.series, sc.timeframe, tradelab::data::AlignPolicy::Inner).unwrap();
    let states = tradelab::regime::detect_states(&cfg, &md);
    let from = cfg.warmup_bars();
    let a = tradelab::regime::accuracy(&m.regimes[from..], &states[from..]);
    assert!(a.recall.iter().all(|r| *r > 0.25), "{a:?}");
    assert!(a.recall[tradelab::regime::HIGH_VOL as usize] > 0.7, "{a:?}");
}

#[test]
fn ms_garch_detector_labels_from_the_past_only() {
    // Its accuracy against a floor is measured by research/'s detector_floors (minutes).
    let cfg = tradelab::experiment::RegimeConfig { detector: tradelab::experiment::Detector::MsGarch, ..Default::default() };
    // A bar's label depends on bars up to it only.
    let sc = tradelab::synth::SynthConfig { seed: 3, bars: 6_000, mean_regime_bars: 200.0, ..Default::default() };
    let m = sc.generate().unwrap();
    assert_labels_from_the_past_only(&cfg, &m, sc.timeframe, 4_500);
}

#[test]
fn bad_rebalance_and_regime_settings_name_their_key() {
    // The schema's error, else the check every run makes of the regime overrides.
    let bad = |body: &str| {
        let text = format!("[experiment]\nname = \"t\"\n[data]\npath = \"x\"\n{body}");
        match Experiment::from_toml(&text, "t.toml".as_ref()) {
            Err(e) => e.to_string(),
            Ok(e) => tradelab::engine::check(&e, "t.toml".as_ref()).unwrap_err().to_string(),
        }
    };
    let e = bad("[rebalance]\ntargets = { A = 0.7, B = 0.5 }\n");
    assert!(e.contains("rebalance.targets") && e.contains("sum to 1.2"), "{e}");
    let e = bad("[rebalance]\ntargets = { A = 0.5 }\nband = 1.5\n");
    assert!(e.contains("rebalance.band"), "{e}");
    let e = bad("[regime.overrides.high_vol]\nexecution.fee_bps = 5\n");
    assert!(e.contains("regime.overrides.high_vol.execution.fee_bps"), "{e}");
    let e = bad("[regime.overrides.crash]\nrisk.max_position = 0.1\n");
    assert!(e.contains("regime.overrides.crash") && e.contains("unknown regime"), "{e}");
    let e = bad("[regime.overrides.bear]\nrisk.stop_loss = 2.0\n");
    assert!(e.contains("regime.overrides.bear.risk.stop_loss"), "{e}");
    let e = bad("[regime]\ndetector = \"pf\"\nswitch_margin = 1.0\n");
    assert!(e.contains("regime.switch_margin") && e.contains("[0, 1)"), "{e}");
    let e = bad("[regime]\ndetector = \"pf\"\nlevel_prior_sd = -0.1\n");
    assert!(e.contains("regime.level_prior_sd") && e.contains("not -0.1"), "{e}");
    let e = bad("[regime]\nrefit_every = 0\n");
    assert!(e.contains("regime.refit_every") && e.contains(">= 1"), "{e}");
    let e = bad("[regime]\nmean_bars = 1.5\n");
    assert!(e.contains("regime.mean_bars") && e.contains("not 1.5"), "{e}");
    // A weight for a source no signal has (the default source is the kind: sma_cross).
    let e = exp("[[signals.technical]]\nkind = \"sma_cross\"\nfast = 2\nslow = 3\n[signals.weights]\nsma_cros = 0.0\n");
    let le = LoadedExperiment { exp: e, file: "t.toml".into() };
    let err = prepare(&le, Arc::new(two_assets()), &Default::default()).unwrap_err().to_string();
    assert!(err.contains("signals.weights.sma_cros") && err.contains("sources: sma_cross"), "{err}");
    // A symbol the data lacks is caught when the data is known.
    let e = exp("[rebalance]\ntargets = { S0 = 0.5, XYZ = 0.5 }\n");
    let le = LoadedExperiment { exp: e, file: "t.toml".into() };
    let err = prepare(&le, Arc::new(two_assets()), &Default::default()).unwrap_err().to_string();
    assert!(err.contains("rebalance.targets.XYZ") && err.contains("not in the data"), "{err}");
}

#[test]
fn bull_and_bear_follow_the_trend_whatever_the_volatility() {
    // A market that rises 0.1% a bar for 1,600 bars, then falls 0.1% a bar for 1,600 (past the
    // detectors' 2,000-bar warm-up), with the same
    // +-0.3% noise (so the same volatility) throughout: the trend t-statistic over 336 bars is
    // about 0.001 / (0.003 / sqrt(336)) = 6, far beyond trend_t = 1.
    let mut rows = Vec::new();
    let mut p: f64 = 100.0;
    for t in 0..3200 {
        let drift = if t < 1600 { 0.001 } else { -0.001 };
        let r = drift + if t % 2 == 0 { 0.003 } else { -0.003 };
        let (o, c) = (p, p * (1.0 + r));
        rows.push((o, o.max(c) * 1.002, o.min(c) * 0.998, c, 1.0));
        p = c;
    }
    let md = market(&rows);
    use tradelab::regime::{BEAR, BULL, HIGH_VOL};
    for detector in [tradelab::experiment::Detector::Rules, tradelab::experiment::Detector::MsGarch] {
        let cfg = tradelab::experiment::RegimeConfig { detector, deseasonalize: false, ..Default::default() };
        let l = tradelab::regime::detect(&cfg, &md);
        let share =
            |range: std::ops::Range<usize>, want: u8| range.clone().filter(|t| l.label[*t] == want).count() as f64 / range.len() as f64;
        // Once the window holds the rise (and, later, only the fall), the labels say so.
        assert!(share(400..1600, BULL) > 0.95, "{detector:?}: {:?}", &l.label[400..420]);
        assert!(share(2000..3200, BEAR) > 0.95, "{detector:?}: {:?}", &l.label[2000..2020]);
        assert!(l.label.iter().all(|x| *x != HIGH_VOL), "{detector:?}: constant volatility is never high_vol");
        assert!(l.trend_t[400..1600].iter().all(|t| *t > 1.0) && l.trend_t[2000..].iter().all(|t| *t < -1.0));
    }
}
