//! Rebalancing against vectorbt: portfolios of two to four symbols held at fixed weights and
//! traded back to them at the bar's close, on a calendar or when a weight leaves its band, as
//! `make_rebalance_refs.py` ran them in vectorbt (`Portfolio.from_orders` with target percents,
//! or tradelab's rules as `from_order_func`'s order function; see `tests/parity/README.md`).
//! Each case runs here through an experiment file with `[rebalance]`, the data loader and the
//! engine.

use super::{here, num, rel, table};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use tradelab::engine::{backtest, prepare, RunResult};
use tradelab::experiment::Experiment;

struct RbCase {
    id: usize,
    dataset: String,
    symbols: Vec<String>,
    /// Fixed weights by symbol, or `inverse_vol:WINDOW`.
    weights: Result<Vec<f64>, String>,
    /// `monthly`, `weekly`, `every_N` or `none` (bands alone).
    calendar: String,
    fee: f64,
    band: Option<f64>,
    relative_band: Option<f64>,
    trade_to: String,
    tolerance: f64,
    /// `target_percent` (vectorbt's own sizing) or `tradelab_rule` (tradelab's, given to
    /// vectorbt as its order function).
    sizing: String,
    final_value: f64,
}

/// A vectorbt order: bar, symbol, signed units, price, fee.
type PeerOrder = (usize, String, f64, f64, f64);

fn folder(dataset: &str) -> &'static str {
    match dataset {
        "crypto_1d" => "binance_1d",
        "crypto_1h" => ".",
        "equities_1d" => "equities_1d",
        other => panic!("unknown dataset {other}"),
    }
}

fn cash(dataset: &str) -> f64 {
    if dataset == "equities_1d" {
        10_000.0
    } else {
        100_000.0
    }
}

fn experiment(c: &RbCase) -> String {
    let dir = here().join("fixtures").join(folder(&c.dataset));
    let paths: Vec<String> = c.symbols.iter().map(|s| format!("{:?}", dir.join(format!("{s}.csv")).display().to_string())).collect();

    let mut t = String::new();
    writeln!(t, "[experiment]\nname = \"rebalance_parity\"\n[data]\npaths = [{}]", paths.join(", ")).unwrap();
    writeln!(t, "[portfolio]\ninitial_cash = {}", cash(&c.dataset)).unwrap();
    match &c.weights {
        Ok(w) => {
            let targets: Vec<String> = c.symbols.iter().zip(w).map(|(s, w)| format!("{s} = {w}")).collect();
            writeln!(t, "[rebalance]\nweights = \"fixed\"\ntargets = {{ {} }}", targets.join(", ")).unwrap();
        }
        Err(spec) => {
            let window = spec.strip_prefix("inverse_vol:").expect("inverse_vol:WINDOW");
            writeln!(t, "[rebalance]\nweights = \"inverse_vol\"\nvol_window = {window}").unwrap();
        }
    }
    match (c.calendar.as_str(), c.calendar.strip_prefix("every_")) {
        ("none", _) => {}
        (_, Some(n)) => writeln!(t, "every_bars = {n}").unwrap(),
        (cal, None) => writeln!(t, "calendar = {cal:?}").unwrap(),
    }
    for (k, v) in [("band", c.band), ("relative_band", c.relative_band)] {
        if let Some(v) = v {
            writeln!(t, "{k} = {v}").unwrap();
        }
    }
    writeln!(t, "trade_to = {:?}\ntolerance = {}", c.trade_to, c.tolerance).unwrap();
    writeln!(t, "[execution]\nfill = \"close\"\nfee_bps = {}", c.fee * 1e4).unwrap();
    t
}

fn run(c: &RbCase) -> (RunResult, Vec<String>) {
    let dir = here().join("../target/parity");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("rebalance_{}.toml", c.id));
    std::fs::write(&file, experiment(c)).unwrap();
    let le = Experiment::load(&file).unwrap_or_else(|e| panic!("rebalance case {}: {e}", c.id));
    let (md, _) = tradelab::data::load(&le.data_paths(), &le.exp.data).unwrap();
    let symbols = md.symbols.clone();
    let prep = prepare(&le, Arc::new(md), &Default::default()).unwrap();
    (backtest(&le.exp, &prep), symbols)
}

#[test]
fn rebalancing_matches_vectorbt() {
    let cases: Vec<RbCase> = table("rebalance/cases.csv")
        .iter()
        .map(|r| RbCase {
            id: num(r, "id") as usize,
            dataset: r["dataset"].clone(),
            symbols: r["symbols"].split(' ').map(str::to_string).collect(),
            weights: r["weights"].split(' ').map(|w| w.parse().map_err(|_| r["weights"].clone())).collect(),
            calendar: r["calendar"].clone(),
            fee: num(r, "fee"),
            band: r["band"].parse().ok(),
            relative_band: r["relative_band"].parse().ok(),
            trade_to: r["trade_to"].clone(),
            tolerance: num(r, "tolerance"),
            sizing: r["sizing"].clone(),
            final_value: num(r, "final_value"),
        })
        .collect();
    let mut values: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
    for r in table("rebalance/values.csv") {
        values.entry(num(&r, "case") as usize).or_default().push(num(&r, "value"));
    }
    let mut orders: BTreeMap<usize, Vec<PeerOrder>> = BTreeMap::new();
    for r in table("rebalance/orders.csv") {
        let o = (num(&r, "bar") as usize, r["symbol"].clone(), num(&r, "size"), num(&r, "price"), num(&r, "fee"));
        orders.entry(num(&r, "case") as usize).or_default().push(o);
    }
    assert_eq!(cases.len(), 20);
    let mut failures = Vec::new();
    for c in &cases {
        let (r, symbols) = run(c);
        let peer_values = &values[&c.id];
        assert_eq!(r.equity.len(), peer_values.len(), "case {}: bars", c.id);
        let mut ours: Vec<PeerOrder> = r.fills.iter().map(|f| (f.bar, symbols[f.sym].clone(), f.qty, f.price, f.fee)).collect();
        let mut theirs = orders[&c.id].clone();
        let key = |o: &PeerOrder| (o.0, o.1.clone());
        ours.sort_by_key(key);
        theirs.sort_by_key(key);
        let worst = r.equity.iter().zip(peer_values).map(|(a, b)| rel(*a, *b)).fold(0.0, f64::max);
        let size_dev = ours.iter().zip(&theirs).map(|(a, b)| rel(a.2, b.2)).fold(0.0, f64::max);
        let turnover: f64 = r.fills.iter().map(|f| (f.qty * f.price).abs() / r.equity[f.bar]).sum();
        eprintln!(
            "rebalance case {:>2} ({} {} band {:?} {} fee {} {}): {} orders, equity within {worst:.1e}, sizes within {size_dev:.1e} (fee x turnover {:.1e})",
            c.id,
            c.dataset,
            c.calendar,
            c.band,
            c.trade_to,
            c.fee,
            c.sizing,
            ours.len(),
            c.fee * turnover
        );
        let mut bad = Vec::new();
        if rel(*r.equity.last().unwrap(), c.final_value) > 1e-12 && (c.fee == 0.0 || c.sizing == "tradelab_rule") {
            bad.push(format!("final value {} vs {}", r.equity.last().unwrap(), c.final_value));
        }
        if ours.len() != theirs.len() || ours.iter().zip(&theirs).any(|(a, b)| key(a) != key(b)) {
            let first = ours.iter().zip(&theirs).position(|(a, b)| key(a) != key(b)).unwrap_or(0);
            bad.push(format!(
                "{} orders vs {}, or on other bars or symbols: from {:?} vs {:?}",
                ours.len(),
                theirs.len(),
                ours.get(first),
                theirs.get(first)
            ));
        } else if c.fee == 0.0 || c.sizing == "tradelab_rule" {
            // The same rule: every order and every bar's value to rounding.
            if worst > 1e-12 {
                bad.push(format!("value off by {worst:.1e} relative"));
            }
            for (a, b) in ours.iter().zip(&theirs) {
                let fee_off = (a.4 - b.4).abs() > 1e-9 * b.4.abs().max(1e-6);
                if rel(a.2, b.2) > 1e-9 || a.3 != b.3 || fee_off {
                    bad.push(format!("order {a:?} vs {b:?}"));
                }
            }
        } else {
            // vectorbt's rule with fees: the two differ in where each rebalance's fees come from
            // (tradelab's positions, vectorbt's cash and its last purchase), so an order may
            // differ by about its symbol's fee, and the value by no more than the fees paid.
            for (a, b) in ours.iter().zip(&theirs) {
                let notional = (a.2 * a.3).abs().max((b.2 * b.3).abs());
                if a.2.signum() != b.2.signum() && notional > c.fee * r.equity[a.0] {
                    bad.push(format!("order {a:?} vs {b:?}: the other side, beyond a fee"));
                }
            }
            if worst > c.fee * turnover {
                bad.push(format!("value off by {worst:.1e} relative, more than the fees ({:.1e})", c.fee * turnover));
            }
        }
        failures.extend(bad.into_iter().take(5).map(|b| format!("case {} ({} {} {}): {b}", c.id, c.dataset, c.calendar, c.sizing)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
