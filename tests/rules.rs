//! Strategies as rules (`[[signals.rules]]`) and as code (`[[signals.code]]`), on real bars
//! (Binance BTCUSDT and ETHUSDT hours, fixtures cut from ../shared/data): against the built-in
//! signals they restate, against the same strategy in Rust (examples/custom_signal.rs), against
//! a from-scratch reimplementation of the RSI/SMA strategy, by hand on position terms and
//! warm-up, and truncated (no look-ahead).

#[path = "../examples/custom_signal.rs"]
#[allow(dead_code)]
mod example;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use tradelab::data::{load, LoadOptions, MarketData};
use tradelab::engine::{backtest, prepare, RunResult};
use tradelab::experiment::{Experiment, LoadedExperiment};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn market(files: &[&str]) -> MarketData {
    let paths: Vec<PathBuf> = files.iter().map(|f| fixture(f)).collect();
    load(&paths, &LoadOptions::default()).unwrap().0
}

/// Run an experiment body (without [experiment] and [data]) on `md`.
fn run_on(md: &MarketData, body: &str) -> tradelab::Result<RunResult> {
    let text = format!("[experiment]\nname = \"t\"\n[data]\npath = \"unused\"\n{body}");
    let le = LoadedExperiment { exp: Experiment::from_toml(&text, Path::new("t.toml"))?, file: "t.toml".into() };
    let prep = prepare(&le, Arc::new(md.clone()), &Default::default())?;
    Ok(backtest(&le.exp, &prep))
}

fn run(md: &MarketData, body: &str) -> RunResult {
    run_on(md, body).unwrap_or_else(|e| panic!("{e}"))
}

/// (entry bar, exit bar) of every trade.
fn spans(r: &RunResult) -> Vec<(usize, Option<usize>)> {
    r.trades.iter().map(|t| (t.entry_bar, t.exit_bar)).collect()
}

const COSTS: &str = "[execution]\nfee_bps = 10\nslippage_bps = 2\n";

#[test]
fn crosses_written_as_rules_trade_as_the_built_in_sma_cross() {
    let md = market(&["BTCUSDT_1h.csv"]);
    for (fast, slow) in [(10, 30), (5, 50), (24, 96)] {
        // Long only: a cross up enters, a cross down leaves.
        let built_in =
            run(&md, &format!("[[signals.technical]]\nkind = \"sma_cross\"\nfast = {fast}\nslow = {slow}\nmode = \"event\"\n{COSTS}"));
        let rules = run(
            &md,
            &format!(
                "[[signals.rules]]\nentry = \"crosses_above(sma({fast}), sma({slow}))\"\nexit = \"crosses_below(sma({fast}), sma({slow}))\"\n{COSTS}"
            ),
        );
        assert!(built_in.trades.len() > 10, "{fast}/{slow}: {} trades", built_in.trades.len());
        assert_eq!(rules.fills, built_in.fills, "{fast}/{slow} long only");
        assert_eq!(rules.equity, built_in.equity, "{fast}/{slow} long only");
        // Long and short: each cross reverses.
        let short = "[portfolio]\nallow_short = true\n";
        let built_in = run(
            &md,
            &format!("{short}[[signals.technical]]\nkind = \"sma_cross\"\nfast = {fast}\nslow = {slow}\nmode = \"event\"\n{COSTS}"),
        );
        let rules = run(
            &md,
            &format!(
                "{short}[[signals.rules]]\nentry = \"crosses_above(sma({fast}), sma({slow}))\"\nshort_entry = \"crosses_below(sma({fast}), sma({slow}))\"\n{COSTS}"
            ),
        );
        assert!(built_in.trades.iter().any(|t| t.dir < 0));
        assert_eq!(rules.fills, built_in.fills, "{fast}/{slow} long-short");
    }
}

fn rsi_sma_rules(lo: f64, hi: f64) -> String {
    format!(
        "[[signals.rules]]\nentry = \"rsi(14) < lo and close > sma(200)\"\nexit = \"crosses_above(rsi(14), hi) or bars_in_trade >= 48\"\nparams = {{ lo = {lo}, hi = {hi} }}\n{COSTS}"
    )
}

#[test]
fn the_rust_example_trades_as_the_rules() {
    example::register_rsi_sma();
    let md = market(&["BTCUSDT_1h.csv"]);
    for (lo, hi) in [(30.0, 70.0), (40.0, 60.0), (45.0, 80.0)] {
        let rules = run(&md, &rsi_sma_rules(lo, hi));
        let code = run(&md, &format!("[[signals.code]]\nname = \"rsi_sma\"\nparams = {{ lo = {lo}, hi = {hi}, max_bars = 48 }}\n{COSTS}"));
        assert!(!rules.trades.is_empty(), "{lo}/{hi}");
        assert_eq!(code.fills, rules.fills, "{lo}/{hi}");
        assert_eq!(code.equity, rules.equity, "{lo}/{hi}");
    }
    // The constructor's refusal names the parameters.
    let err = run_on(&md, "[[signals.code]]\nname = \"rsi_sma\"\nparams = { lo = 80, hi = 70 }\n").unwrap_err().to_string();
    assert!(err.contains("signals.code[0].params") && err.contains("lo (80) < hi (70)"), "{err}");
}

/// SMA by a direct sum, NaN before n values.
fn sma(x: &[f64], n: usize) -> Vec<f64> {
    (0..x.len()).map(|i| if i + 1 < n { f64::NAN } else { x[i + 1 - n..=i].iter().sum::<f64>() / n as f64 }).collect()
}

/// Wilder's RSI: the first averages are plain means of the first n changes, then smoothed by
/// (n-1)/n; NaN before bar n.
fn wilder_rsi(x: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    let (mut g, mut l) = (0.0, 0.0);
    for i in 1..x.len() {
        let d = x[i] - x[i - 1];
        let (up, down) = (d.max(0.0), (-d).max(0.0));
        if i <= n {
            g += up / n as f64;
            l += down / n as f64;
        } else {
            g = (g * (n - 1) as f64 + up) / n as f64;
            l = (l * (n - 1) as f64 + down) / n as f64;
        }
        if i >= n {
            out[i] = if l == 0.0 { 100.0 } else { 100.0 - 100.0 / (1.0 + g / l) };
        }
    }
    out
}

#[test]
fn rsi_sma_rules_trade_where_a_from_scratch_version_says() {
    let md = market(&["BTCUSDT_1h.csv"]);
    let c = &md.bars[0].close;
    let (rsi, s200) = (wilder_rsi(c, 14), sma(c, 200));
    for (lo, hi) in [(30.0, 70.0), (40.0, 65.0)] {
        // Decide at each close, fill at the next open; bars in the trade count from the fill bar.
        let mut want = Vec::new();
        let mut fill: Option<usize> = None;
        for t in 0..c.len() - 1 {
            if let Some(f) = fill {
                let in_trade = t.saturating_sub(f);
                if (rsi[t] > hi && rsi[t - 1] < hi) || in_trade >= 48 {
                    want.push((f, Some(t + 1)));
                    fill = None;
                }
                continue;
            }
            if rsi[t] < lo && c[t] > s200[t] {
                fill = Some(t + 1);
            }
        }
        if let Some(f) = fill {
            want.push((f, None));
        }
        let got = run(&md, &rsi_sma_rules(lo, hi));
        assert!(want.len() >= 4, "{lo}/{hi}: {want:?}");
        assert_eq!(spans(&got), want, "{lo}/{hi}");
        // The decisions recorded (signals.csv) are the bars before each fill.
        let decided: Vec<(usize, i8)> = got.decisions.iter().map(|d| (d.0, d.2)).collect();
        let from_trades: Vec<(usize, i8)> =
            want.iter().flat_map(|(f, x)| std::iter::once((f - 1, 1)).chain(x.map(|x| (x - 1, 0)))).collect();
        assert_eq!(decided, from_trades, "{lo}/{hi}");
    }
}

#[test]
fn unknown_operands_never_act_and_position_terms_are_exact() {
    let md = market(&["BTCUSDT_1h.csv"]);
    // RSI(14) is unknown until bar 14: neither `not` nor `or` makes a condition true before it.
    for entry in ["not (rsi(14) < 0)", "rsi(14) >= 0 or close > 0"] {
        let r = run(&md, &format!("[[signals.rules]]\nentry = \"{entry}\"\n"));
        assert_eq!(r.fills[0].bar, 15, "{entry}: decided at bar 14's close, filled at bar 15's open");
    }
    // Out at +-1% of the entry price, measured at closes: check every trade by hand.
    let r = run(&md, "[[signals.rules]]\nentry = \"close > open\"\nexit = \"unrealized_return >= 0.01 or unrealized_return <= -0.01\"\n");
    let c = &md.bars[0].close;
    let closed: Vec<_> = r.trades.iter().filter(|t| t.exit_bar.is_some()).collect();
    assert!(closed.len() > 30, "{} trades", closed.len());
    for t in closed {
        let (entry, decided) = (t.entry_bar, t.exit_bar.unwrap() - 1);
        let ret = |u: usize| c[u] / t.entry_price - 1.0;
        assert!(ret(decided).abs() >= 0.01, "trade from bar {entry}: left at {decided} with {}", ret(decided));
        for u in entry..decided {
            assert!(ret(u).abs() < 0.01, "trade from bar {entry}: should have left at {u} ({})", ret(u));
        }
    }
    // Out after exactly 5 bars in the trade: filled at the open 6 bars after the entry fill.
    let r = run(&md, "[[signals.rules]]\nentry = \"close > open\"\nexit = \"bars_in_trade >= 5\"\n");
    assert!(r.trades.len() > 100);
    for t in r.trades.iter().filter(|t| t.exit_bar.is_some()) {
        assert_eq!(t.exit_bar.unwrap() - t.entry_bar, 6);
    }
}

#[test]
fn no_rule_reads_past_the_bar_it_decides_at() {
    // Another symbol, coarser bars of it and of this one, rolling windows and lookbacks: the same
    // run on the first k bars must fill and mark exactly as the full run up to bar k.
    let md = market(&["BTCUSDT_1h.csv", "ETHUSDT_1h.csv"]);
    let body = "[portfolio]\nallow_short = true\n[[signals.rules]]\nsymbols = [\"BTCUSDT_1h\"]\n\
        entry = \"close > sma(3)@1d and close@ETHUSDT_1h > highest(close, 12)[1]@ETHUSDT_1h\"\n\
        exit = \"close < ema(6)@4h or momentum(3)@ETHUSDT_1h < -0.01\"\n\
        short_entry = \"close[1]@1d > close and crosses_below(rsi(14), 45)\"\n\
        short_exit = \"bars_in_trade >= 12\"\n";
    let full = run(&md, body);
    assert!(full.trades.len() > 20, "{} trades", full.trades.len());
    assert!(full.trades.iter().any(|t| t.dir < 0));
    for k in [400, 1000, 1777, 2300] {
        let cut = run(&md.slice(0..k), body);
        let before: Vec<_> = full.fills.iter().filter(|f| f.bar < k).cloned().collect();
        assert_eq!(cut.fills, before, "first {k} bars");
        assert_eq!(cut.equity[..], full.equity[..k], "first {k} bars");
    }
}
