//! Property tests (proptest, fixed seed so CI is repeatable) of the accounting and risk
//! invariants over random markets, signals and settings: equity is cash plus positions at the
//! close; fees are never negative and nothing is non-finite; a long-only book never borrows cash
//! or goes short; signal fills leave positions on whole lots; the risk step never lets a target
//! past `max_position` or the targets together past `max_gross_exposure`; and a fill at the
//! decision's close is never worth more than its target fraction of the equity at that close.

mod common;
use common::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};
use tradelab::engine::backtest;
use tradelab::execution::Size;
use tradelab::portfolio::Reason;

/// Settings drawn for one case.
#[derive(Debug, Clone)]
struct Settings {
    short: bool,
    cash: f64,
    fraction: f64,
    max_position: f64,
    gross: f64,
    stop_loss: Option<f64>,
    take_profit: Option<f64>,
    fill: &'static str,
    fee_bps: f64,
    slippage_bps: f64,
    fixed_fee: f64,
    lot: f64,
}

impl Settings {
    fn toml(&self, ns: usize) -> String {
        let mut b = format!(
            "[portfolio]\ninitial_cash = {}\nallow_short = {}\n[decision]\nfraction = {}\n[risk]\nmax_position = {}\nmax_gross_exposure = {}\n",
            self.cash,
            self.short,
            self.fraction,
            self.max_position,
            self.gross * ns as f64
        );
        if let Some(s) = self.stop_loss {
            b += &format!("stop_loss = {s}\n");
        }
        if let Some(s) = self.take_profit {
            b += &format!("take_profit = {s}\n");
        }
        b + &format!(
            "[execution]\nfill = \"{}\"\nfee_bps = {}\nslippage_bps = {}\nfixed_fee = {}\nlot_size = {}\n",
            self.fill, self.fee_bps, self.slippage_bps, self.fixed_fee, self.lot
        )
    }
}

fn settings() -> impl Strategy<Value = Settings> {
    (
        (any::<bool>(), 100.0..1e6f64, 0.1..1.0f64, 0.1..1.0f64, 0.3..1.0f64),
        (proptest::option::weighted(0.3, 0.01..0.2f64), proptest::option::weighted(0.3, 0.01..0.3f64)),
        (prop::sample::select(vec!["next_open", "close", "next_close"]), 0.0..50.0f64, 0.0..50.0f64),
        (prop_oneof![4 => Just(0.0), 1 => 0.0..2.0f64], prop_oneof![7 => Just(0.0), 1 => Just(0.001), 1 => Just(0.1), 1 => Just(1.0)]),
    )
        .prop_map(
            |((short, cash, fraction, max_position, gross), (stop_loss, take_profit), (fill, fee_bps, slippage_bps), (fixed_fee, lot))| {
                Settings { short, cash, fraction, max_position, gross, stop_loss, take_profit, fill, fee_bps, slippage_bps, fixed_fee, lot }
            },
        )
}

/// One symbol's bars from a start price and per-bar (gap, move, upper wick, lower wick, volume).
fn bars(start: f64, steps: &[(f64, f64, f64, f64, f64)]) -> Vec<Ohlcv> {
    let mut p = start;
    steps
        .iter()
        .map(|&(gap, mv, up, down, vol)| {
            let o = p * (1.0 + gap);
            let c = o * (1.0 + mv);
            p = c;
            (o, o.max(c) * (1.0 + up), o.min(c) * (1.0 - down), c, vol)
        })
        .collect()
}

/// 1 to 3 symbols of 5 to 60 bars, and a sparse signal (long, short or flat) per symbol.
fn market() -> impl Strategy<Value = (Vec<Vec<Ohlcv>>, Vec<Vec<Option<i8>>>)> {
    (1usize..=3, 5usize..60).prop_flat_map(|(ns, n)| {
        let step = (-0.05..0.05f64, -0.08..0.08f64, 0.0..0.03f64, 0.0..0.03f64, 0.0..1e6f64);
        let sym = (0.01..50_000.0f64, prop::collection::vec(step, n)).prop_map(|(start, steps)| bars(start, &steps));
        let dir = prop_oneof![3 => Just(None), 1 => prop::sample::select(vec![1i8, -1, 0]).prop_map(Some)];
        (prop::collection::vec(sym, ns), prop::collection::vec(prop::collection::vec(dir, n), ns))
    })
}

fn config() -> Config {
    Config { cases: 300, rng_seed: RngSeed::Fixed(20261203), failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn accounting_and_risk_invariants_hold((syms, dirs) in market(), st in settings()) {
        let ns = syms.len();
        let n = syms[0].len();
        let slices: Vec<&[Ohlcv]> = syms.iter().map(|s| s.as_slice()).collect();
        let md = multi(&slices);
        let e = exp(&st.toml(ns));
        let r = backtest(&e, &prepared(md.clone(), dirs.iter().map(|d| signal(d)).collect()));
        prop_assert!(r.fault.is_none(), "{:?}", r.fault);
        prop_assert_eq!(r.equity.len(), n);
        let close = |s: usize, t: usize| md.bars[s].close[t];
        for t in 0..n {
            let held: f64 = (0..ns).map(|s| r.positions[s][t] * close(s, t)).sum();
            let scale = r.cash[t].abs() + (0..ns).map(|s| (r.positions[s][t] * close(s, t)).abs()).sum::<f64>();
            prop_assert!(r.equity[t].is_finite() && r.cash[t].is_finite(), "bar {}", t);
            prop_assert!((r.equity[t] - (r.cash[t] + held)).abs() <= 1e-9 * scale.max(1.0), "bar {}: equity != cash + positions", t);
            if !st.short {
                prop_assert!(r.cash[t] >= -1e-9 * scale.max(1.0), "bar {}: a long-only book borrowed cash {}", t, r.cash[t]);
                prop_assert!((0..ns).all(|s| r.positions[s][t] >= 0.0), "bar {}: a short in a long-only book", t);
            }
        }
        let mut pos = vec![0.0; ns];
        for f in &r.fills {
            prop_assert!(f.fee >= 0.0 && f.fee.is_finite() && f.qty.is_finite() && f.price > 0.0, "{:?}", f);
            pos[f.sym] += f.qty;
            // Signal fills land on whole lots (stops close whatever is held).
            if st.lot > 0.0 && f.reason == Reason::Signal {
                let k = pos[f.sym] / st.lot;
                prop_assert!((k - k.round()).abs() < 1e-6, "position {} is not a multiple of the lot {}", pos[f.sym], st.lot);
            }
        }

        // The risk step: every target within max_position, and (with no stop to reset a target
        // behind the orders' backs) the latest targets together within max_gross_exposure.
        let gross_limit = st.gross * ns as f64;
        let mut latest = vec![0.0f64; ns];
        for o in r.orders.iter().filter(|o| o.order.reason == Reason::Signal) {
            let Size::TargetFraction(f) = o.order.size else { continue };
            prop_assert!(f.abs() <= st.max_position + 1e-12, "order {:?}: target {} beyond max_position {}", o.order, f, st.max_position);
            latest[o.order.sym] = f;
            if st.stop_loss.is_none() && st.take_profit.is_none() {
                let gross: f64 = latest.iter().map(|x| x.abs()).sum();
                prop_assert!(gross <= gross_limit + 1e-9, "bar {}: targets {:?} beyond max_gross_exposure {}", o.created, latest, gross_limit);
            }
        }

        // At the decision's close (fill = "close"): a position just filled is worth at most its
        // target fraction of the equity at that close, which is the equity after the bar less
        // what the bar's signal fills cost (fees and slippage against the close).
        if st.fill == "close" {
            let slip = st.slippage_bps / 1e4;
            for t in 0..n {
                let at_t: Vec<_> = r.fills.iter().filter(|f| f.bar == t && f.reason == Reason::Signal).collect();
                if at_t.is_empty() {
                    continue;
                }
                let cost: f64 = at_t.iter().map(|f| f.fee + f.qty.abs() * (f.price - close(f.sym, t)).abs()).sum();
                let e_dec = r.equity[t] + cost;
                for f in &at_t {
                    let Size::TargetFraction(frac) = r.orders[f.order as usize].order.size else { continue };
                    let worth = (r.positions[f.sym][t] * close(f.sym, t)).abs();
                    let most = frac.abs() * e_dec / (1.0 - slip);
                    prop_assert!(worth <= most * (1.0 + 1e-9) + 1e-9, "bar {}: symbol {} worth {} above its target {} of equity {}", t, f.sym, worth, frac, e_dec);
                }
            }
        }
    }
}
