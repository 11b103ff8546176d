//! Accounting invariants over random markets, signals and settings (seeded, so a failure
//! reproduces): equity is cash plus positions at the close, fees are never negative, nothing is
//! non-finite, a long-only book never borrows cash or goes short, and signal fills leave
//! positions on whole lots. (Hand-rolled over a seeded generator, not proptest: no shrinking,
//! but every failure names its case and settings.)

mod common;
use common::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tradelab::engine::backtest;

#[test]
fn accounting_invariants_hold_over_random_cases() {
    let mut rng = ChaCha8Rng::seed_from_u64(20261203);
    for case in 0..300 {
        let ns = rng.gen_range(1..=3);
        let n = rng.gen_range(5..60);
        let mut syms: Vec<Vec<Ohlcv>> = Vec::new();
        for _ in 0..ns {
            let mut p: f64 = rng.gen_range(0.01..50_000.0);
            let mut bars = Vec::new();
            for _ in 0..n {
                let o = p * (1.0 + rng.gen_range(-0.05..0.05));
                let c = o * (1.0 + rng.gen_range(-0.08..0.08));
                let h = o.max(c) * (1.0 + rng.gen_range(0.0..0.03));
                let l = o.min(c) * (1.0 - rng.gen_range(0.0..0.03));
                bars.push((o, h, l, c, rng.gen_range(0.0..1e6)));
                p = c;
            }
            syms.push(bars);
        }
        let slices: Vec<&[Ohlcv]> = syms.iter().map(|s| s.as_slice()).collect();
        let md = multi(&slices);
        let signals = (0..ns)
            .map(|_| {
                let dirs: Vec<Option<i8>> =
                    (0..n).map(|_| if rng.gen_bool(0.3) { Some([1, -1, 0][rng.gen_range(0..3)]) } else { None }).collect();
                signal(&dirs)
            })
            .collect();
        let short = rng.gen_bool(0.5);
        let max_position = rng.gen_range(0.1..1.0);
        let lot = if rng.gen_bool(0.3) { [0.001, 0.1, 1.0][rng.gen_range(0..3)] } else { 0.0 };
        let mut body = format!(
            "[portfolio]\ninitial_cash = {}\nallow_short = {short}\n[decision]\nfraction = {}\n[risk]\nmax_position = {max_position}\n\
             max_gross_exposure = {}\n",
            rng.gen_range(100.0..1e6),
            rng.gen_range(0.1..1.0),
            rng.gen_range(0.5..1.0) * ns as f64,
        );
        if rng.gen_bool(0.3) {
            body += &format!("stop_loss = {}\n", rng.gen_range(0.01..0.2));
        }
        if rng.gen_bool(0.3) {
            body += &format!("take_profit = {}\n", rng.gen_range(0.01..0.3));
        }
        body += &format!(
            "[execution]\nfill = \"{}\"\nfee_bps = {}\nslippage_bps = {}\nfixed_fee = {}\nlot_size = {lot}\n",
            ["next_open", "close", "next_close"][rng.gen_range(0..3)],
            rng.gen_range(0.0..50.0),
            rng.gen_range(0.0..50.0),
            if rng.gen_bool(0.2) { rng.gen_range(0.0..2.0) } else { 0.0 },
        );
        let e = exp(&body);
        let prep = prepared(md.clone(), signals);
        let r = backtest(&e, &prep);
        let why = format!("case {case}: {body}");
        assert!(r.fault.is_none(), "{why}: {:?}", r.fault);
        assert_eq!(r.equity.len(), n, "{why}");
        for t in 0..n {
            let held: f64 = (0..ns).map(|s| r.positions[s][t] * md.bars[s].close[t]).sum();
            let scale = r.cash[t].abs() + (0..ns).map(|s| (r.positions[s][t] * md.bars[s].close[t]).abs()).sum::<f64>();
            assert!(r.equity[t].is_finite() && r.cash[t].is_finite(), "{why}: bar {t}");
            assert!((r.equity[t] - (r.cash[t] + held)).abs() <= 1e-9 * scale.max(1.0), "{why}: bar {t}: equity != cash + positions");
            if !short {
                assert!(r.cash[t] >= -1e-9 * scale.max(1.0), "{why}: bar {t}: a long-only book borrowed cash {}", r.cash[t]);
                assert!((0..ns).all(|s| r.positions[s][t] >= 0.0), "{why}: bar {t}: a short in a long-only book");
            }
        }
        let mut pos = vec![0.0; ns];
        for f in &r.fills {
            assert!(f.fee >= 0.0 && f.fee.is_finite() && f.qty.is_finite() && f.price > 0.0, "{why}: {f:?}");
            pos[f.sym] += f.qty;
            // Signal fills land on whole lots (stops close whatever is held).
            if lot > 0.0 && f.reason == tradelab::portfolio::Reason::Signal {
                let k = pos[f.sym] / lot;
                assert!((k - k.round()).abs() < 1e-6, "{why}: position {} is not a multiple of the lot {lot}", pos[f.sym]);
            }
        }
    }
}
