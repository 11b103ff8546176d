//! The engine against hand-worked examples: fill timing, fees, slippage, partial fills, shorts,
//! stops, risk limits, and the accounting invariant.

mod common;
use common::*;
use tradelab::engine::backtest;
use tradelab::portfolio::Reason;

fn flat(p: f64) -> (f64, f64, f64, f64, f64) {
    (p, p, p, p, 1e9)
}

const BARS: [(f64, f64, f64, f64, f64); 4] = [
    (100.0, 100.0, 100.0, 100.0, 1e9),
    (102.0, 103.0, 101.0, 103.0, 1e9),
    (104.0, 106.0, 104.0, 105.0, 1e9),
    (106.0, 107.0, 105.0, 107.0, 1e9),
];

#[test]
fn next_open_fills_with_fees_and_slippage() {
    let e = exp("[portfolio]\ninitial_cash = 1000\n[execution]\nfee_bps = 10\nslippage_bps = 10\n");
    let p = prepared(market(&BARS), vec![signal(&[Some(1), None, Some(0), None])]);
    let r = backtest(&e, &p);
    // Buy at bar 1's open moved up by 10 bps; all cash in, leaving room for a 10 bps fee.
    let buy = 102.0 * 1.001;
    let qty = 1000.0 / (buy * 1.001);
    let sell = 106.0 * 0.999;
    assert_eq!(r.fills.len(), 2);
    assert_eq!((r.fills[0].bar, r.fills[1].bar), (1, 3));
    assert!(close(r.fills[0].price, buy, 1e-12) && close(r.fills[0].qty, qty, 1e-12));
    assert!(close(r.fills[1].price, sell, 1e-12) && close(r.fills[1].qty, -qty, 1e-12));
    assert!(close(r.equity[1], qty * 103.0, 1e-12));
    assert!(close(r.equity[2], qty * 105.0, 1e-12));
    let fin = qty * sell * 0.999;
    assert!(close(r.equity[3], fin, 1e-12));
    assert!(close(r.trades[0].pnl, fin - 1000.0, 1e-9));
    assert!(close(r.fees, qty * buy * 0.001 + qty * sell * 0.001, 1e-9));
}

#[test]
fn market_on_close_fills_at_the_signal_bar() {
    let e = exp("[portfolio]\ninitial_cash = 1000\n[execution]\nfill = \"close\"\nfee_bps = 10\n");
    let p = prepared(market(&BARS), vec![signal(&[Some(1), None, Some(0), None])]);
    let r = backtest(&e, &p);
    let qty = 1000.0 / (100.0 * 1.001);
    assert_eq!((r.fills[0].bar, r.fills[0].price), (0, 100.0));
    assert_eq!((r.fills[1].bar, r.fills[1].price), (2, 105.0));
    assert!(close(r.equity[3], qty * 105.0 * 0.999, 1e-12));
}

#[test]
fn next_close_and_delay() {
    let e = exp("[execution]\nfill = \"next_close\"\ndelay_bars = 1\nfee_bps = 0\n");
    let p = prepared(market(&BARS), vec![signal(&[Some(1), None, None, None])]);
    let r = backtest(&e, &p);
    assert_eq!((r.fills[0].bar, r.fills[0].price), (2, 105.0));
}

#[test]
fn short_accounting() {
    let e = exp("[portfolio]\ninitial_cash = 1000\nallow_short = true\n[execution]\nfee_bps = 10\n");
    let bars = [flat(100.0), flat(102.0), flat(95.0), flat(90.0)];
    let p = prepared(market(&bars), vec![signal(&[Some(-1), None, None, None])]);
    let r = backtest(&e, &p);
    // Sized as a long would be: the short's notional plus its fee fits in equity.
    let q = 1000.0 / (102.0 * 1.001);
    assert!(close(r.fills[0].qty, -q, 1e-12));
    let fee = q * 102.0 * 0.001;
    assert!(close(q * 102.0 + fee, 1000.0, 1e-12));
    // cash = 1000 + proceeds - fee; equity = cash - q * price
    assert!(close(r.cash[3], 1000.0 + q * 102.0 - fee, 1e-12));
    assert!(close(r.equity[3], 1000.0 + q * 102.0 - fee - q * 90.0, 1e-12));
}

#[test]
fn reversal_happens_at_one_price() {
    let e = exp("[portfolio]\ninitial_cash = 1000\nallow_short = true\n[execution]\nfee_bps = 0\n");
    let bars = [flat(100.0), flat(100.0), flat(110.0), flat(110.0), flat(100.0)];
    let p = prepared(market(&bars), vec![signal(&[Some(1), None, Some(-1), None, None])]);
    let r = backtest(&e, &p);
    // Long 10 at 100; at 110 equity is 1100: one fill of -20 takes it to short 10.
    assert_eq!(r.fills.len(), 2);
    assert!(close(r.fills[1].qty, -20.0, 1e-12) && r.fills[1].price == 110.0);
    assert_eq!(r.trades.len(), 2);
    assert!(close(r.equity[4], 1100.0 + 10.0 * 10.0, 1e-12));
}

#[test]
fn participation_cap_gives_partial_fills() {
    let e = exp("[portfolio]\ninitial_cash = 1000\n[execution]\nfee_bps = 0\nmax_participation = 0.5\n");
    let bars: Vec<_> = (0..6).map(|_| (100.0, 100.0, 100.0, 100.0, 4.0)).collect();
    let p = prepared(market(&bars), vec![signal(&[Some(1), None, None, None, None, None])]);
    let r = backtest(&e, &p);
    // Target 10 units, at most 2 per bar: 2,2,2,2,2 on bars 1..=5.
    let q: Vec<(usize, f64)> = r.fills.iter().map(|f| (f.bar, f.qty)).collect();
    assert_eq!(q, vec![(1, 2.0), (2, 2.0), (3, 2.0), (4, 2.0), (5, 2.0)]);
}

#[test]
fn lot_size_and_min_notional_reject_small_orders() {
    let e = exp("[portfolio]\ninitial_cash = 1000\n[execution]\nfee_bps = 0\nlot_size = 3\nmin_notional = 500\n");
    let p = prepared(market(&[flat(100.0), flat(100.0), flat(100.0)]), vec![signal(&[Some(1), None, None])]);
    let r = backtest(&e, &p);
    assert_eq!(r.fills[0].qty, 9.0); // 10 rounded down to lots of 3
    let e = exp("[portfolio]\ninitial_cash = 400\n[execution]\nfee_bps = 0\nmin_notional = 500\n");
    let p = prepared(market(&[flat(100.0), flat(100.0), flat(100.0)]), vec![signal(&[Some(1), None, None])]);
    let r = backtest(&e, &p);
    assert!(r.fills.is_empty());
    assert_eq!(r.orders[0].status, tradelab::execution::Status::Rejected);
}

#[test]
fn stop_loss_fills_at_level_or_at_a_gapped_open() {
    let e = exp("[portfolio]\ninitial_cash = 1000\n[risk]\nstop_loss = 0.05\n[execution]\nfee_bps = 0\n");
    // Entry at bar 1's open (100); bar 2 trades down to 94: stop at 95.
    let bars = [flat(100.0), flat(100.0), (99.0, 100.0, 94.0, 96.0, 1e9), flat(96.0)];
    let r = backtest(&e, &prepared(market(&bars), vec![signal(&[Some(1), None, None, None])]));
    assert_eq!((r.fills[1].bar, r.fills[1].price, r.fills[1].reason), (2, 95.0, Reason::StopLoss));
    assert_eq!(r.risk_events[0].rule.as_str(), "stop_loss");
    // Gap: bar 2 opens at 90, below the stop: filled at the open.
    let bars = [flat(100.0), flat(100.0), (90.0, 91.0, 89.0, 90.0, 1e9), flat(96.0)];
    let r = backtest(&e, &prepared(market(&bars), vec![signal(&[Some(1), None, None, None])]));
    assert_eq!((r.fills[1].bar, r.fills[1].price), (2, 90.0));
    // The signal is still long, but a stopped position waits for a new signal.
    assert_eq!(r.fills.len(), 2);
}

#[test]
fn stop_on_entry_bar_is_a_stated_rule() {
    let bars = [flat(100.0), (100.0, 101.0, 94.0, 100.0, 1e9), flat(100.0)];
    let sig = || vec![signal(&[Some(1), None, None])];
    let e = exp("[risk]\nstop_loss = 0.05\n[execution]\nfee_bps = 0\n");
    let r = backtest(&e, &prepared(market(&bars), sig()));
    assert_eq!(r.fills.len(), 2, "entered at bar 1's open, stopped within bar 1");
    let e = exp("[risk]\nstop_loss = 0.05\nstop_on_entry_bar = false\n[execution]\nfee_bps = 0\n");
    let r = backtest(&e, &prepared(market(&bars), sig()));
    assert_eq!(r.fills.len(), 1);
}

#[test]
fn same_bar_stop_and_take_profit() {
    let bars = [flat(100.0), flat(100.0), (100.0, 111.0, 94.0, 100.0, 1e9)];
    let sig = || vec![signal(&[Some(1), None, None])];
    let e = exp("[risk]\nstop_loss = 0.05\ntake_profit = 0.1\n[execution]\nfee_bps = 0\n");
    let r = backtest(&e, &prepared(market(&bars), sig()));
    assert_eq!((r.fills[1].price, r.fills[1].reason), (95.0, Reason::StopLoss));
    let e = exp("[risk]\nstop_loss = 0.05\ntake_profit = 0.1\nsame_bar = \"favorable\"\n[execution]\nfee_bps = 0\n");
    let r = backtest(&e, &prepared(market(&bars), sig()));
    assert!(close(r.fills[1].price, 110.0, 1e-12) && r.fills[1].reason == Reason::TakeProfit);
}

#[test]
fn trailing_stop() {
    let bars = [flat(100.0), flat(100.0), (100.0, 120.0, 100.0, 119.0, 1e9), (118.0, 118.0, 110.0, 111.0, 1e9)];
    let e = exp("[risk]\ntrailing_stop = 0.05\n[execution]\nfee_bps = 0\n");
    let r = backtest(&e, &prepared(market(&bars), vec![signal(&[Some(1), None, None, None])]));
    assert_eq!((r.fills[1].bar, r.fills[1].price, r.fills[1].reason), (3, 114.0, Reason::TrailingStop));
}

#[test]
fn max_position_and_gross_exposure_clip_and_log() {
    let e = exp("[portfolio]\ninitial_cash = 1000\n[risk]\nmax_position = 0.4\nmax_gross_exposure = 0.6\n[execution]\nfee_bps = 0\n");
    let md = multi(&[&[flat(100.0); 3], &[flat(50.0); 3]]);
    let p = prepared(md, vec![signal(&[Some(1), None, None]), signal(&[Some(1), None, None])]);
    let r = backtest(&e, &p);
    assert!(close(r.positions[0][2] * 100.0, 400.0, 1e-12));
    assert!(close(r.positions[1][2] * 50.0, 200.0, 1e-12));
    let rules: Vec<(&str, f64, f64)> = r.risk_events.iter().map(|e| (e.rule.as_str(), e.requested, e.allowed)).collect();
    assert_eq!(rules[0], ("max_position", 1.0, 0.4));
    assert_eq!(rules[1].0, "max_gross_exposure");
    assert!(close(rules[1].2, 0.2, 1e-12));
}

#[test]
fn a_request_the_gross_limit_cuts_to_nothing_is_logged_once() {
    // Both symbols go long with all of equity at bar 0: S0 (first) takes the whole gross
    // exposure, S1's request (a state: long at every bar) is cut to 0, which is its target
    // already: nothing is sent, and the cut is logged once although S1 is looked at again every
    // bar. S0 exits at bar 2; S1 enters at that close (filled at bar 3's open), with no further
    // event.
    let e = exp("[portfolio]\ninitial_cash = 1000\n[execution]\nfee_bps = 0\n");
    let md = multi(&[&[flat(100.0); 5], &[flat(50.0); 5]]);
    let p = prepared(md, vec![signal(&[Some(1), None, Some(0), None, None]), signal(&[Some(1); 5])]);
    let r = backtest(&e, &p);
    let events: Vec<(usize, usize, &str, f64, f64)> =
        r.risk_events.iter().map(|e| (e.bar, e.sym.unwrap(), e.rule.as_str(), e.requested, e.allowed)).collect();
    assert_eq!(events, vec![(0, 1, "max_gross_exposure", 1.0, 0.0)]);
    let fills: Vec<(usize, usize)> = r.fills.iter().map(|f| (f.bar, f.sym)).collect();
    assert_eq!(fills, vec![(1, 0), (3, 0), (3, 1)]);
    assert!(close(r.positions[1][4] * 50.0, 1000.0, 1e-12));
}

#[test]
fn drawdown_halt_flattens_and_refuses_new_risk() {
    let e = exp("[portfolio]\ninitial_cash = 1000\n[risk]\nmax_drawdown = 0.1\n[execution]\nfee_bps = 0\n");
    let bars = [flat(100.0), flat(100.0), flat(85.0), flat(90.0), flat(90.0), flat(95.0)];
    let p = prepared(market(&bars), vec![signal(&[Some(1), None, None, Some(0), Some(1), None])]);
    let r = backtest(&e, &p);
    assert_eq!(r.fills.len(), 2);
    assert_eq!((r.fills[1].bar, r.fills[1].reason), (3, Reason::Halt));
    assert_eq!(r.risk_events[0].rule.as_str(), "max_drawdown");
    assert!(r.risk_events.iter().any(|ev| ev.rule.as_str() == "max_drawdown" && ev.requested == 1.0 && ev.allowed == 0.0));
}

#[test]
fn a_short_that_loses_the_account_ends_the_run_at_zero() {
    // Short all 1,000 at 100 (no fee): 10 units, cash 2,000. At 150 the book is worth 500; at 250
    // it is worth -500: the account is ruined at that close. The position is closed there, the
    // equity is 0 from then on (the later fall to 80 is not the account's), and the figures end
    // at the ruin: -100%, a 100% drawdown, one losing trade.
    let e = exp("[portfolio]\ninitial_cash = 1000\nallow_short = true\n[execution]\nfill = \"close\"\nfee_bps = 0\n");
    let bars = [flat(100.0), flat(100.0), flat(150.0), flat(250.0), flat(300.0), flat(80.0)];
    let p = prepared(market(&bars), vec![signal(&[None, Some(-1), None, None, None, None])]);
    let r = backtest(&e, &p);
    assert_eq!(r.ruin, Some((3, 2000.0 - 10.0 * 250.0)));
    assert_eq!(r.equity, vec![1000.0, 1000.0, 500.0, 0.0, 0.0, 0.0]);
    assert_eq!(r.cash[3..], [0.0, 0.0, 0.0]);
    assert_eq!(r.positions[0][3..], [0.0, 0.0, 0.0]);
    let last = r.fills.last().unwrap();
    assert_eq!((last.bar, last.qty, last.price, last.fee, last.reason), (3, 10.0, 250.0, 0.0, Reason::Liquidation));
    assert_eq!((r.trades.len(), r.trades[0].exit_bar), (1, Some(3)));
    assert!(close(r.trades[0].pnl, -1500.0, 1e-12));
    let s = tradelab::engine::summarize(&p, &r);
    assert_eq!((s.total_return, s.max_drawdown, s.bars, s.trades), (-1.0, 1.0, 4, 1));
    assert!(s.warnings.iter().any(|w| w.starts_with("the account was ruined at bar 3")), "{:?}", s.warnings);
    // A long book with cash left cannot reach zero: the same prices bought, not shorted.
    let p = prepared(market(&bars), vec![signal(&[None, Some(1), None, None, None, None])]);
    assert_eq!(backtest(&e, &p).ruin, None);
}

#[test]
fn max_trades_per_day() {
    let e = exp("[risk]\nmax_trades_per_day = 1\n[execution]\nfee_bps = 0\n");
    let bars = [flat(100.0); 6];
    let p = prepared(market(&bars), vec![signal(&[Some(1), Some(0), Some(1), Some(0), None, None])]);
    let r = backtest(&e, &p);
    assert_eq!(r.fills.len(), 2, "one entry and its exit");
    assert!(r.risk_events.iter().any(|ev| ev.rule.as_str() == "max_trades_per_day"));
}

#[test]
fn limit_orders_fill_at_limit_or_better_open() {
    let e = exp("[execution]\nfee_bps = 0\norder_type = \"limit\"\nlimit_offset_bps = 100\n");
    // Decision at close 100: buy limit 99. Bar 1 low 99.5 (no fill), bar 2 low 98 (fill at 99).
    let bars = [flat(100.0), (100.0, 101.0, 99.5, 100.0, 1e9), (100.0, 100.0, 98.0, 99.0, 1e9)];
    let r = backtest(&e, &prepared(market(&bars), vec![signal(&[Some(1), None, None])]));
    assert_eq!((r.fills[0].bar, r.fills[0].price), (2, 99.0));
    // Opening below the limit fills at the open.
    let bars = [flat(100.0), (97.0, 98.0, 96.0, 97.0, 1e9)];
    let r = backtest(&e, &prepared(market(&bars), vec![signal(&[Some(1), None])]));
    assert_eq!(r.fills[0].price, 97.0);
}

#[test]
fn equity_is_cash_plus_positions_every_bar() {
    let e = exp("[portfolio]\nallow_short = true\n[execution]\nfee_bps = 7\nslippage_bps = 3\n");
    let a: Vec<_> = (0..50).map(|i| flat(100.0 + (i as f64 * 0.7).sin() * 10.0)).collect();
    let b: Vec<_> = (0..50).map(|i| flat(50.0 + (i as f64 * 0.3).cos() * 5.0)).collect();
    let dirs = |k: usize| -> Vec<Option<i8>> { (0..50).map(|i| Some(if (i / k).is_multiple_of(2) { 1 } else { -1 })).collect() };
    let e2 = exp("[portfolio]\nallow_short = true\n[decision]\nfraction = 0.5\n[execution]\nfee_bps = 7\nslippage_bps = 3\n");
    for ex in [e, e2] {
        let p = prepared(multi(&[&a, &b]), vec![signal(&dirs(3)), signal(&dirs(5))]);
        let r = backtest(&ex, &p);
        for t in 0..50 {
            let pos: f64 = (0..2).map(|s| r.positions[s][t] * p.md.bars[s].close[t]).sum();
            assert!(close(r.equity[t], r.cash[t] + pos, 1e-12), "bar {t}");
        }
        assert!(r.fills.len() > 10);
    }
}

#[test]
fn stop_entry_orders_fill_when_the_price_trades_through() {
    let e = exp("[execution]\nfee_bps = 0\nslippage_bps = 10\norder_type = \"stop\"\nlimit_offset_bps = 100\n");
    // Decision at close 100: buy stop at 101. Bar 1 high 100.5 (no), bar 2 high 102 (fill at 101 + slippage).
    let bars = [flat(100.0), (100.0, 100.5, 99.0, 100.0, 1e9), (100.0, 102.0, 99.0, 101.5, 1e9)];
    let r = backtest(&e, &prepared(market(&bars), vec![signal(&[Some(1), None, None])]));
    assert_eq!(r.fills[0].bar, 2);
    assert!(close(r.fills[0].price, 101.0 * 1.001, 1e-12));
}

#[test]
fn borrow_cost_is_charged_on_shorts_every_bar() {
    let e = exp("[portfolio]\ninitial_cash = 1000\nallow_short = true\nborrow_rate = 0.876\n[execution]\nfee_bps = 0\n");
    // 0.876 a year over 8760 bars = 1e-4 per bar of the short's value.
    let p = prepared(market(&[flat(100.0); 4]), vec![signal(&[Some(-1), None, None, None])]);
    let r = backtest(&e, &p);
    // Short 10 units from bar 1's open; value 1000 at every close, bars 1..=3 charged.
    assert!(close(r.borrow_paid, 3.0 * 0.1, 1e-12));
    assert!(close(r.equity[3], 1000.0 - 0.3, 1e-12));
}

#[test]
fn atr_stop_uses_the_atr_known_at_entry() {
    let e = exp("[risk]\nstop_atr = 2\n[execution]\nfee_bps = 0\n");
    let bars = [flat(100.0), flat(100.0), (100.0, 100.0, 95.0, 97.0, 1e9), (97.0, 97.0, 93.0, 95.0, 1e9)];
    let mut p = prepared(market(&bars), vec![signal(&[Some(1), None, None, None])]);
    // Entry at bar 1 open (100); the ATR known then (bar 0) is 2.5, so the stop is 100 - 2*2.5 = 95;
    // bar 2 reaches 95 exactly, which triggers it.
    p.atr = vec![std::sync::Arc::new(vec![2.5, 9.0, 9.0, 9.0])];
    let r = backtest(&e, &p);
    assert_eq!((r.fills[1].bar, r.fills[1].price, r.fills[1].reason), (2, 95.0, Reason::StopLoss));
}

#[test]
fn correlation_cap_refuses_a_second_correlated_position() {
    let e = exp("[risk]\nmax_correlation = 0.8\n[decision]\nfraction = 0.5\n[execution]\nfee_bps = 0\n");
    let md = multi(&[&[flat(100.0); 3], &[flat(50.0); 3]]);
    let mut p = prepared(md, vec![signal(&[Some(1), None, None]), signal(&[Some(1), None, None])]);
    p.corr = vec![Vec::new(), vec![0.9, 0.9, 0.9], Vec::new(), Vec::new()];
    let r = backtest(&e, &p);
    assert_eq!(r.fills.len(), 1);
    assert_eq!(r.risk_events[0].rule.as_str(), "max_correlation");
    p.corr[1] = vec![0.5; 3];
    assert_eq!(backtest(&e, &p).fills.len(), 2);
}

#[test]
fn day_orders_expire_at_the_end_of_their_day() {
    // Hourly bars from 2024-01-01T00:00Z: bars 0..=23 are one UTC day. A buy limit far below the
    // market decided at bar 20 can fill from bar 21; as a day order it expires after bar 23.
    let e = exp("[execution]\nfee_bps = 0\norder_type = \"limit\"\nlimit_offset_bps = 1000\ntime_in_force_day = true\n");
    let mut bars = vec![flat(100.0); 30];
    bars[26] = (100.0, 100.0, 80.0, 100.0, 1e9); // would fill here, the next day
    let mut dirs = vec![None; 30];
    dirs[20] = Some(1);
    let r = backtest(&e, &prepared(market(&bars), vec![signal(&dirs)]));
    assert!(r.fills.is_empty());
    assert_eq!(r.orders[0].status, tradelab::execution::Status::Expired);
    // Good till cancelled, it fills on bar 26 at the limit.
    let e = exp("[execution]\nfee_bps = 0\norder_type = \"limit\"\nlimit_offset_bps = 1000\n");
    let r = backtest(&e, &prepared(market(&bars), vec![signal(&dirs)]));
    assert_eq!((r.fills[0].bar, r.fills[0].price), (26, 90.0));
}
