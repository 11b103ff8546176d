//! Run folders: the resolved experiment, `stats.json` and the CSV files of a run. (Charts and
//! `index.html` are the plotted-report work; this module writes the data they draw from.)

use crate::data::time::format_ts;
use crate::engine::{Prepared, RunResult};
use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::metrics::Stats;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Make `<root>/NNNN`, the first free run number, so no earlier run is ever overwritten.
pub fn new_run_dir(root: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
    for k in 1..100_000 {
        let dir = root.join(format!("{k:04}"));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(Error::io(&dir, e)),
        }
    }
    Err(Error::Internal(format!("{}: no free run number", root.display())))
}

fn csv(dir: &Path, name: &str, header: &str, mut rows: impl FnMut(&mut dyn Write) -> std::io::Result<()>) -> Result<()> {
    let path = dir.join(name);
    let io = |e| Error::io(&path, e);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&path).map_err(io)?);
    writeln!(w, "{header}").map_err(io)?;
    rows(&mut w).map_err(io)?;
    w.flush().map_err(io)
}

/// Write every output file of a run into `dir`.
pub fn write_run(dir: &Path, exp: &Experiment, prep: &Prepared, res: &RunResult, stats: &Stats) -> Result<()> {
    let md = &*prep.md;
    let ts = |i: usize| format_ts(md.timestamps[i]);
    let sym = |s: usize| md.symbols[s].as_str();
    let path = dir.join("experiment.toml");
    std::fs::write(&path, exp.to_toml()).map_err(|e| Error::io(&path, e))?;
    let path = dir.join("stats.json");
    let json = serde_json::to_string_pretty(stats).map_err(|e| Error::Internal(e.to_string()))?;
    std::fs::write(&path, json + "\n").map_err(|e| Error::io(&path, e))?;

    let mut peak = exp.portfolio.initial_cash;
    csv(dir, "equity.csv", "timestamp,equity,cash,gross_exposure,drawdown", |w| {
        for i in 0..res.equity.len() {
            let e = res.equity[i];
            peak = peak.max(e);
            let gross: f64 = (0..md.symbols.len()).map(|s| (res.positions[s][i] * md.bars[s].close[i]).abs()).sum();
            writeln!(w, "{},{},{},{},{}", ts(i), e, res.cash[i], gross, 1.0 - e / peak)?;
        }
        Ok(())
    })?;
    let targets = &res.target_weights;
    let header = std::iter::once("timestamp".to_string())
        .chain(md.symbols.iter().cloned())
        .chain(["cash".to_string()])
        .chain(if targets.is_empty() { Vec::new() } else { md.symbols.iter().map(|s| format!("target_{s}")).collect() })
        .collect::<Vec<_>>()
        .join(",");
    csv(dir, "weights.csv", &header, |w| {
        for i in 0..res.equity.len() {
            write!(w, "{}", ts(i))?;
            for s in 0..md.symbols.len() {
                write!(w, ",{}", res.positions[s][i] * md.bars[s].close[i] / res.equity[i])?;
            }
            write!(w, ",{}", res.cash[i] / res.equity[i])?;
            for t in targets {
                write!(w, ",{}", t[i])?;
            }
            writeln!(w)?;
        }
        Ok(())
    })?;
    csv(dir, "fills.csv", "timestamp,symbol,side,qty,price,notional,fee,reason,order_id", |w| {
        for f in &res.fills {
            let side = if f.qty > 0.0 { "buy" } else { "sell" };
            writeln!(
                w,
                "{},{},{side},{},{},{},{},{},{}",
                ts(f.bar),
                sym(f.sym),
                f.qty.abs(),
                f.price,
                (f.qty * f.price).abs(),
                f.fee,
                f.reason.as_str(),
                f.order
            )?;
        }
        Ok(())
    })?;
    csv(
        dir,
        "trades.csv",
        "symbol,direction,entry_time,exit_time,entry_price,exit_price,max_qty,entry_notional,pnl,return,fees,bars,exit_reason",
        |w| {
            for t in &res.trades {
                let dir = if t.dir > 0 { "long" } else { "short" };
                let (exit, bars, why) = match t.exit_bar {
                    Some(b) => (ts(b), b - t.entry_bar, t.exit_reason.map_or("", |r| r.as_str())),
                    None => (String::new(), md.len() - 1 - t.entry_bar, "open"),
                };
                writeln!(
                    w,
                    "{},{dir},{},{exit},{},{},{},{},{},{},{},{bars},{why}",
                    sym(t.sym),
                    ts(t.entry_bar),
                    t.entry_price,
                    t.exit_price,
                    t.max_qty,
                    t.entry_notional,
                    t.pnl,
                    t.ret(),
                    t.fees
                )?;
            }
            Ok(())
        },
    )?;
    csv(dir, "orders.csv", "order_id,decided_at,symbol,size_kind,size,type,price_level,fill_from,at,reason,status,filled_qty,note", |w| {
        for r in &res.orders {
            let o = &r.order;
            let (kind, size) = match o.size {
                crate::execution::Size::TargetFraction(f) => ("target_fraction", f),
                crate::execution::Size::Qty(q) => ("qty", q),
            };
            let (ty, lim) = match o.price {
                crate::execution::PriceType::Market => ("market", String::new()),
                crate::execution::PriceType::Limit(l) => ("limit", l.to_string()),
                crate::execution::PriceType::Stop(l) => ("stop", l.to_string()),
            };
            let from = if o.bar < md.len() { ts(o.bar) } else { "after end".into() };
            let status = serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            writeln!(
                w,
                "{},{},{},{kind},{size},{ty},{lim},{from},{},{},{status},{},{}",
                o.id,
                ts(r.created),
                sym(o.sym),
                if o.at_close { "close" } else { "open" },
                o.reason.as_str(),
                r.filled_qty,
                r.note
            )?;
        }
        Ok(())
    })?;
    csv(dir, "risk_events.csv", "timestamp,symbol,rule,requested,allowed", |w| {
        for e in &res.risk_events {
            writeln!(w, "{},{},{},{},{}", ts(e.bar), e.sym.map_or("", sym), e.rule, e.requested, e.allowed)?;
        }
        Ok(())
    })?;
    if exp.rebalance.is_some() {
        let header = "decided_at,settled_at,trigger,orders,notional,est_cost,cost,within,checked,accuracy,max_deviation,accurate";
        let header = std::iter::once(header.to_string())
            .chain(md.symbols.iter().map(|s| format!("target_{s}")))
            .chain(md.symbols.iter().map(|s| format!("aim_{s}")))
            .collect::<Vec<_>>()
            .join(",");
        csv(dir, "rebalances.csv", &header, |w| {
            for r in &res.rebalances {
                write!(
                    w,
                    "{},{},{},{},{},{},{},{},{},{},{},{}",
                    ts(r.bar),
                    r.settled.map_or(String::new(), ts),
                    r.trigger.as_str(),
                    r.orders,
                    r.notional,
                    r.est_cost,
                    r.cost,
                    r.within,
                    r.checked,
                    if r.checked > 0 { r.within as f64 / r.checked as f64 } else { f64::NAN },
                    r.max_dev,
                    r.accurate()
                )?;
                for x in r.targets.iter().chain(&r.aims) {
                    write!(w, ",{x}")?;
                }
                writeln!(w)?;
            }
            Ok(())
        })?;
    }
    if let Some(rg) = &prep.regime {
        let names = crate::data::synth::REGIMES;
        csv(dir, "regimes.csv", "timestamp,regime,parameters,switched", |w| {
            let mut prev = u8::MAX;
            for i in 0..md.len() {
                let lab = rg.labels[i];
                let params = if rg.which[lab as usize].is_some() { names[lab as usize] } else { "base" };
                let active = res.regime_active.get(i).copied().unwrap_or(lab);
                let switched = prev != u8::MAX && rg.which[active as usize] != rg.which[prev as usize];
                prev = active;
                writeln!(w, "{},{},{params},{switched}", ts(i), names[lab as usize])?;
            }
            Ok(())
        })?;
    }
    csv(dir, "signals.csv", "timestamp,symbol,direction,strength,confidence", |w| {
        for i in 0..md.len() {
            for (s, c) in prep.combined.iter().enumerate() {
                if c.dir[i] != crate::signals::NONE {
                    writeln!(w, "{},{},{},{},{}", ts(i), sym(s), c.dir[i], c.strength_at(i), c.conf_at(i))?;
                }
            }
        }
        Ok(())
    })?;
    Ok(())
}
