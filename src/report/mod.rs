//! Run folders: the resolved experiment, `stats.json` and the CSV files of a run, then the
//! charts (PNG and SVG), `index.html` and `summary.md` drawn from those saved files, so
//! `tradelab report DIR` redraws exactly what a run drew; the same for optimization and
//! walk-forward folders, and `compare` for several runs side by side.

pub mod charts;
pub mod html;
pub mod view;

use crate::data::time::format_ts;
use crate::data::CsvFile;
use crate::engine::{Prepared, RunResult};
use crate::error::{Error, Result};
use crate::experiment::Experiment;
use crate::metrics::Stats;
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

/// Write every output file of a run into `dir`.
pub fn write_run(dir: &Path, exp: &Experiment, prep: &Prepared, res: &RunResult, stats: &Stats) -> Result<()> {
    let md = &*prep.md;
    let ts = |i: usize| format_ts(md.timestamps[i]);
    let sym = |s: usize| md.symbols[s].as_str();
    let ns = md.symbols.len();
    let path = dir.join("experiment.toml");
    crate::data::write_atomic(&path, exp.to_toml().as_bytes())?;
    let path = dir.join("stats.json");
    let json = serde_json::to_string_pretty(stats).map_err(|e| Error::Internal(e.to_string()))?;
    crate::data::write_atomic(&path, (json + "\n").as_bytes())?;

    let mut peak = exp.portfolio.initial_cash;
    let mut w = CsvFile::create(&dir.join("equity.csv"), ["timestamp", "equity", "cash", "gross_exposure", "drawdown"])?;
    for i in 0..res.equity.len() {
        let e = res.equity[i];
        peak = peak.max(e);
        let gross: f64 = (0..ns).map(|s| (res.positions[s][i] * md.bars[s].close[i]).abs()).sum();
        w.row(&[&ts(i), &e, &res.cash[i], &gross, &(1.0 - e / peak)])?;
    }
    w.finish()?;
    let targets = &res.target_weights;
    let header = std::iter::once("timestamp".to_string())
        .chain(md.symbols.iter().cloned())
        .chain(["cash".to_string()])
        .chain(if targets.is_empty() { Vec::new() } else { md.symbols.iter().map(|s| format!("target_{s}")).collect() });
    let mut w = CsvFile::create(&dir.join("weights.csv"), header)?;
    for i in 0..res.equity.len() {
        w.field(ts(i))?;
        for s in 0..ns {
            w.field(res.positions[s][i] * md.bars[s].close[i] / res.equity[i])?;
        }
        w.field(res.cash[i] / res.equity[i])?;
        for t in targets {
            w.field(t[i])?;
        }
        w.end()?;
    }
    w.finish()?;
    let mut w = CsvFile::create(&dir.join("prices.csv"), std::iter::once("timestamp").chain(md.symbols.iter().map(String::as_str)))?;
    for i in 0..md.len() {
        w.field(ts(i))?;
        for b in &md.bars {
            w.field(b.close[i])?;
        }
        w.end()?;
    }
    w.finish()?;
    let mut w =
        CsvFile::create(&dir.join("fills.csv"), ["timestamp", "symbol", "side", "qty", "price", "notional", "fee", "reason", "order_id"])?;
    for f in &res.fills {
        let side = if f.qty > 0.0 { "buy" } else { "sell" };
        w.row(&[&ts(f.bar), &sym(f.sym), &side, &f.qty.abs(), &f.price, &(f.qty * f.price).abs(), &f.fee, &f.reason.as_str(), &f.order])?;
    }
    w.finish()?;
    let mut w = CsvFile::create(
        &dir.join("trades.csv"),
        [
            "symbol",
            "direction",
            "entry_time",
            "exit_time",
            "entry_price",
            "exit_price",
            "max_qty",
            "entry_notional",
            "pnl",
            "return",
            "fees",
            "bars",
            "exit_reason",
        ],
    )?;
    for t in &res.trades {
        let dir = if t.dir > 0 { "long" } else { "short" };
        let (exit, bars, why) = match t.exit_bar {
            Some(b) => (ts(b), b - t.entry_bar, t.exit_reason.map_or("", |r| r.as_str())),
            None => (String::new(), md.len() - 1 - t.entry_bar, "open"),
        };
        w.row(&[
            &sym(t.sym),
            &dir,
            &ts(t.entry_bar),
            &exit,
            &t.entry_price,
            &t.exit_price,
            &t.max_qty,
            &t.entry_notional,
            &t.pnl,
            &t.ret(),
            &t.fees,
            &bars,
            &why,
        ])?;
    }
    w.finish()?;
    let mut w = CsvFile::create(
        &dir.join("orders.csv"),
        [
            "order_id",
            "decided_at",
            "symbol",
            "size_kind",
            "size",
            "type",
            "price_level",
            "fill_from",
            "at",
            "reason",
            "status",
            "filled_qty",
            "note",
        ],
    )?;
    for r in &res.orders {
        let o = &r.order;
        let (kind, size) = match o.size {
            crate::execution::Size::TargetFraction(f) => ("target_fraction", f),
            crate::execution::Size::TargetQty(q) => ("target_qty", q),
            crate::execution::Size::Qty(q) => ("qty", q),
        };
        let (ty, lim) = match o.price {
            crate::execution::PriceType::Market => ("market", String::new()),
            crate::execution::PriceType::Limit(l) => ("limit", l.to_string()),
            crate::execution::PriceType::Stop(l) => ("stop", l.to_string()),
        };
        let from = if o.bar < md.len() { ts(o.bar) } else { "after end".into() };
        let status = serde_json::to_value(r.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        let at = if o.at_close { "close" } else { "open" };
        w.row(&[
            &o.id,
            &ts(r.created),
            &sym(o.sym),
            &kind,
            &size,
            &ty,
            &lim,
            &from,
            &at,
            &o.reason.as_str(),
            &status,
            &r.filled_qty,
            &r.note,
        ])?;
    }
    w.finish()?;
    let mut w = CsvFile::create(&dir.join("risk_events.csv"), ["timestamp", "symbol", "rule", "requested", "allowed"])?;
    for e in &res.risk_events {
        w.row(&[&ts(e.bar), &e.sym.map_or("", sym), &e.rule, &e.requested, &e.allowed])?;
    }
    w.finish()?;
    if exp.rebalance.is_some() {
        let head = [
            "decided_at",
            "settled_at",
            "trigger",
            "orders",
            "notional",
            "est_cost",
            "cost",
            "within",
            "checked",
            "accuracy",
            "max_deviation",
            "accurate",
        ];
        let header = head
            .iter()
            .map(|h| h.to_string())
            .chain(md.symbols.iter().map(|s| format!("target_{s}")))
            .chain(md.symbols.iter().map(|s| format!("aim_{s}")));
        let mut w = CsvFile::create(&dir.join("rebalances.csv"), header)?;
        for r in &res.rebalances {
            let fields: [&dyn std::fmt::Display; 12] = [
                &ts(r.bar),
                &r.settled.map_or(String::new(), ts),
                &r.trigger.as_str(),
                &r.orders,
                &r.notional,
                &r.est_cost,
                &r.cost,
                &r.within,
                &r.checked,
                &if r.checked > 0 { r.within as f64 / r.checked as f64 } else { f64::NAN },
                &r.max_dev,
                &r.accurate(),
            ];
            for x in fields {
                w.field(x)?;
            }
            for x in r.targets.iter().chain(&r.aims) {
                w.field(x)?;
            }
            w.end()?;
        }
        w.finish()?;
    }
    if let Some(rg) = &prep.regime {
        let names = crate::regime::REGIMES;
        let mut w = CsvFile::create(&dir.join("regimes.csv"), ["timestamp", "regime", "volatility", "trend_t", "parameters", "switched"])?;
        let mut prev = u8::MAX;
        let l = &rg.labels;
        for i in 0..md.len() {
            let lab = l.label[i];
            let params = if rg.which[lab as usize].is_some() { names[lab as usize] } else { "base" };
            // The label of bar i is in force from its close (see the engine).
            let switched = prev != u8::MAX && rg.which[lab as usize] != rg.which[prev as usize];
            prev = lab;
            let vol = crate::regime::VOLATILITY[l.volatility[i] as usize];
            w.row(&[&ts(i), &names[lab as usize], &vol, &l.trend_t[i], &params, &switched])?;
        }
        w.finish()?;
    }
    if !prep.models.is_empty() {
        write_models(dir, &[(prep, 0..md.len())])?;
    }
    // The combined signal where it speaks; a strategy's decisions where it did not hold.
    let mut w = CsvFile::create(&dir.join("signals.csv"), ["timestamp", "symbol", "direction", "strength", "confidence"])?;
    let mut decided = res.decisions.iter().peekable();
    for i in 0..md.len() {
        for (s, c) in prep.combined.iter().enumerate() {
            if c.dir[i] != crate::signals::NONE {
                w.row(&[&ts(i), &sym(s), &c.dir[i], &c.strength_at(i), &c.conf_at(i)])?;
            }
            if let Some(&(_, _, d, k, conf)) = decided.next_if(|x| (x.0, x.1) == (i, s)) {
                w.row(&[&ts(i), &sym(s), &d, &k, &conf])?;
            }
        }
    }
    w.finish()
}

use html::Block;

/// `model_signals.csv` (per bar and symbol: the prediction, its probability, the probability of
/// "up", the true label where known, and the training window of the refit that made it) and
/// `model.json` (per refit: when, on what, out-of-sample scores, feature importances; and the
/// calibration table of the predictions written), over the bars `span` of each prepared part
/// (a run: all its bars; a walk-forward: each test window).
pub fn write_models(dir: &Path, parts: &[(&Prepared, std::ops::Range<usize>)]) -> Result<()> {
    let head = ["timestamp", "symbol", "model", "prediction", "probability", "p_up", "label", "refit_at", "train_start", "train_end"];
    let mut w = CsvFile::create(&dir.join("model_signals.csv"), head)?;
    let mut models = Vec::new();
    let n_models = parts.first().map_or(0, |(p, _)| p.models.len());
    for k in 0..n_models {
        // Calibration: out-of-sample "up" probabilities in ten bins against how often up came.
        let mut bins = [(0.0f64, 0.0f64, 0usize); 10];
        let mut refits = Vec::new();
        let (mut key, mut features, mut classes) = (String::new(), Vec::new(), Vec::new());
        for (prep, span) in parts {
            let Some(m) = prep.models.get(k) else { continue };
            let md = &*prep.md;
            let ts = |i: usize| format_ts(md.timestamps[i]);
            (key, features, classes) = (m.key.clone(), m.features.clone(), m.classes.clone());
            for i in span.clone() {
                for (s, p) in m.per_sym.iter().enumerate() {
                    let Some(p) = p else { continue };
                    if p.class[i] == crate::signals::NONE {
                        continue;
                    }
                    let r = &m.refits[p.refit[i] as usize];
                    let label = if p.label[i] == crate::signals::NONE { String::new() } else { p.label[i].to_string() };
                    w.row(&[
                        &ts(i),
                        &md.symbols[s],
                        &m.key,
                        &p.class[i],
                        &p.prob[i],
                        &p.p_up[i],
                        &label,
                        &ts(r.bar),
                        &ts(r.train.0),
                        &ts(r.train.1),
                    ])?;
                    if p.label[i] != crate::signals::NONE && p.p_up[i].is_finite() {
                        let b = &mut bins[((p.p_up[i] * 10.0) as usize).min(9)];
                        b.0 += p.p_up[i];
                        b.1 += f64::from(u8::from(p.label[i] == 1));
                        b.2 += 1;
                    }
                }
            }
            for r in m.refits.iter().filter(|r| r.bar < span.end && r.until > span.start) {
                let imp: serde_json::Map<String, serde_json::Value> =
                    m.features.iter().zip(&r.importance).map(|(f, v)| (f.clone(), num(*v))).collect();
                refits.push(serde_json::json!({
                    "symbol": r.sym.map_or("(pooled)".to_string(), |s| md.symbols[s].clone()),
                    "refit_at": ts(r.bar),
                    "predicts_until": if r.until < md.len() { ts(r.until) } else { "end".to_string() },
                    "train_start": ts(r.train.0),
                    "train_end": ts(r.train.1),
                    "fitted_samples": r.fitted,
                    "held_out_samples": r.held_out,
                    "scored_bars": r.scored,
                    "auc": num(r.auc),
                    "accuracy": num(r.accuracy),
                    "brier": num(r.brier),
                    "log_loss": num(r.log_loss),
                    "importance": imp,
                }));
            }
        }
        let calibration: Vec<serde_json::Value> = bins
            .iter()
            .enumerate()
            .filter(|(_, b)| b.2 > 0)
            .map(|(k, b)| serde_json::json!({"bin": format!("{:.1}-{:.1}", k as f64 / 10.0, (k + 1) as f64 / 10.0), "mean_p_up": b.0 / b.2 as f64, "observed_up": b.1 / b.2 as f64, "bars": b.2}))
            .collect();
        models.push(
            serde_json::json!({"model": key, "features": features, "classes": classes, "refits": refits, "calibration": calibration}),
        );
    }
    w.finish()?;
    let json = serde_json::to_string_pretty(&serde_json::json!({ "models": models })).map_err(|e| Error::Internal(e.to_string()))?;
    crate::data::write_atomic(&dir.join("model.json"), (json + "\n").as_bytes())
}

/// A number for JSON (NaN and infinities, which JSON lacks, as null).
fn num(v: f64) -> serde_json::Value {
    serde_json::Number::from_f64(v).map_or(serde_json::Value::Null, serde_json::Value::Number)
}

fn pct(v: f64) -> String {
    if v.is_finite() {
        format!("{:.2}%", 100.0 * v)
    } else {
        "n/a".into()
    }
}

/// The figures people look at first, from a `stats.json` value.
pub fn key_figures(stats: &serde_json::Value) -> Vec<(String, String)> {
    let f = |k: &str| stats.get(k).and_then(|v| v.as_f64());
    let mut out = Vec::new();
    let mut add = |label: &str, key: &str, as_pct: bool| {
        if let Some(v) = f(key) {
            out.push((label.to_string(), if as_pct { pct(v) } else { html::num(&stats[key]) }));
        }
    };
    add("total return", "total_return", true);
    add("buy & hold (equal weight)", "buy_and_hold_return", true);
    add("CAGR", "cagr", true);
    add("max drawdown", "max_drawdown", true);
    add("Sharpe", "sharpe", false);
    add("Sortino", "sortino", false);
    add("Calmar", "calmar", false);
    add("annual volatility", "ann_volatility", true);
    add("closed trades", "trades", false);
    add("win rate", "win_rate", true);
    add("profit factor", "profit_factor", false);
    add("exposure time", "exposure_time", true);
    add("fees paid", "fees_paid", false);
    add("rebalances", "rebalances", false);
    add("rebalance accuracy", "rebalance_accuracy", true);
    add("tracking error", "tracking_error", true);
    add("rebalancing cost", "rebalance_cost", false);
    add("regime switches", "regime_switches", false);
    add("regime label changes", "regime_label_changes", false);
    add("median regime label (bars)", "regime_median_label_bars", false);
    add("regime balanced accuracy", "regime_balanced_accuracy", true);
    out
}

fn caption(stem: &str) -> String {
    match stem {
        "equity" => "Equity against an equal-weight buy and hold of the same symbols".into(),
        "equity_log" => "The same on a log scale".into(),
        "drawdown" => "Drawdown from the running peak".into(),
        "monthly_returns" => "Monthly returns, with yearly totals".into(),
        "rolling" => "Rolling Sharpe ratio and volatility".into(),
        "trade_returns" => "Distribution of closed trades' net returns".into(),
        "weights" => "Portfolio weights over time".into(),
        "convergence" => "Objective per evaluation and the best so far".into(),
        "param_map" => "Objective over the first two parameters".into(),
        "params" => "Each parameter against the objective".into(),
        "top_equity" => "Equity curves of the best trials".into(),
        "walk_forward" => "In-sample and out-of-sample objective per window".into(),
        "oos_equity" => "Stitched out-of-sample equity".into(),
        s if s.starts_with("price_") => format!("{}: price with fills", &s[6..]),
        s if s.starts_with("model_auc") => "The model's out-of-sample AUC and accuracy on the bars each refit predicted".into(),
        s if s.starts_with("model_calibration") => "Predicted probability of up against how often up came (point size: bars)".into(),
        s if s.starts_with("model_importance") => "Permutation importance of each feature on the held-out slices".into(),
        s => s.into(),
    }
}

fn write_text(path: &Path, text: &str) -> Result<()> {
    crate::data::write_atomic(path, text.as_bytes())
}

fn drawing(dir: &Path) -> impl Fn(String) -> Error + '_ {
    move |m| Error::Internal(format!("{}: drawing charts: {m}", dir.display()))
}

fn experiment_name(text: &str) -> String {
    toml::from_str::<toml::Table>(text)
        .ok()
        .and_then(|t| t.get("experiment").and_then(|e| e.get("name")).and_then(|n| n.as_str().map(String::from)))
        .unwrap_or_else(|| "experiment".into())
}

fn folder_label(dir: &Path) -> String {
    dir.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Draw a run folder's charts and write its `index.html` and `summary.md`; returns the chart
/// names.
pub fn render_run(dir: &Path) -> Result<Vec<String>> {
    let v = view::load_run(dir)?;
    let mut names = charts::run_charts(dir, &v).map_err(drawing(dir))?;
    if let Some(m) = read_json(&dir.join("model.json"))? {
        names.extend(charts::model_charts(dir, &m).map_err(drawing(dir))?);
    }
    let title = format!("{} / run {}", experiment_name(&v.experiment), folder_label(dir));
    let figures = key_figures(&v.stats);
    let mut blocks = vec![Block::Heading("Key figures".into()), Block::Pairs(figures.clone()), Block::Heading("Charts".into())];
    blocks.extend(names.iter().map(|n| Block::Chart(n.clone(), caption(n))));
    blocks.push(Block::Heading("All statistics (stats.json)".into()));
    blocks.push(Block::Pairs(html::rows(&v.stats)));
    blocks.push(Block::Heading("Experiment as run (experiment.toml)".into()));
    blocks.push(Block::Pre(v.experiment.clone()));
    let model_files = if dir.join("model.json").exists() { ", model_signals.csv, model.json" } else { "" };
    blocks.push(Block::Text(format!(
        "Data files beside this page: equity.csv, weights.csv, prices.csv, fills.csv, orders.csv, trades.csv, risk_events.csv, signals.csv{model_files}."
    )));
    write_text(&dir.join("index.html"), &html::page(&title, &blocks))?;
    write_text(&dir.join("summary.md"), &html::summary_md(&title, &figures, ""))?;
    Ok(names)
}

fn read_json(path: &Path) -> Result<Option<serde_json::Value>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map(Some).map_err(|e| Error::data(path, None, "bad-json", e.to_string()))
}

/// Draw an optimization folder's charts and page (the objective map over the first two
/// parameters).
pub fn render_optimize(dir: &Path) -> Result<Vec<String>> {
    render_optimize_with(dir, None)
}

/// As [`render_optimize`], with the objective map over the two named parameters.
pub fn render_optimize_with(dir: &Path, map: Option<(&str, &str)>) -> Result<Vec<String>> {
    let (maximize, summary) = direction_max(dir)?;
    // The two files are read side by side.
    let path = dir.join("trials.csv");
    let (top, series) = rayon::join(
        || view::Curves::read_opt(&dir.join("top_equity.csv")),
        || charts::trial_series(&path, maximize).map_err(|m| Error::data(&path, None, "bad-trials", m)),
    );
    let (top, series) = (top?, series?);
    let names = charts::optimize_charts(dir, series, top.as_ref(), map).map_err(|m| {
        if m.starts_with("--map") {
            Error::Input(m)
        } else {
            drawing(dir)(m)
        }
    })?;
    let best_toml = std::fs::read_to_string(dir.join("best.toml")).unwrap_or_default();
    let title = format!("{} / optimization {}", experiment_name(&best_toml), folder_label(dir));
    let mut figures = Vec::new();
    if let Some(s) = &summary {
        for k in ["method", "objective", "direction", "trials", "feasible", "best_trial", "best_objective", "deflated_sharpe", "pbo"] {
            if let Some(v) = s.get(k) {
                figures.push((k.replace('_', " "), html::num(v)));
            }
        }
        if let Some(p) = s.get("best_params").and_then(|p| p.as_object()) {
            for (k, v) in p {
                figures.push((format!("best {k}"), html::num(v)));
            }
        }
    }
    let (head, top_rows) = top_trials(&dir.join("trials.csv"), maximize, 20)?;
    let mut blocks = vec![Block::Heading("Search".into()), Block::Pairs(figures.clone()), Block::Heading("Charts".into())];
    blocks.extend(names.iter().map(|n| Block::Chart(n.clone(), caption(n))));
    blocks.push(Block::Heading(format!("Top {} trials (feasible, by objective)", top_rows.len())));
    blocks.push(Block::Table(head, top_rows));
    // With no trial meeting the constraints, the pick is only the nearest miss.
    let (stats_head, toml_head) = if summary.as_ref().and_then(|s| s.get("feasible")).and_then(|v| v.as_u64()) == Some(0) {
        ("The nearest miss's statistics (no trial met the constraints)", "The nearest miss as an experiment (best.toml)")
    } else {
        ("Best trial's statistics", "Best trial as an experiment (best.toml)")
    };
    if let Some(bs) = summary.as_ref().and_then(|s| s.get("best_stats")) {
        blocks.push(Block::Heading(stats_head.into()));
        blocks.push(Block::Pairs(key_figures(bs)));
    }
    blocks.push(Block::Heading(toml_head.into()));
    blocks.push(Block::Pre(best_toml));
    write_text(&dir.join("index.html"), &html::page(&title, &blocks))?;
    write_text(&dir.join("summary.md"), &html::summary_md(&title, &figures, ""))?;
    Ok(names)
}

/// The `k` best trials by objective among the feasible ones that ran (the earlier of equals
/// first), read from `trials.csv` one row at a time: the header (without seed and duration) and
/// their rows.
fn top_trials(path: &Path, maximize: bool, k: usize) -> Result<(Vec<String>, Vec<Vec<String>>)> {
    let (mut rd, names) = view::Table::open(path)?;
    let col = |n: &str| names.iter().position(|c| c == n);
    let (st, oc, fc) = (col("status"), col("objective"), col("feasible"));
    let head: Vec<String> = names.iter().filter(|n| *n != "seed" && *n != "duration_ms").cloned().collect();
    let cols: Vec<usize> = head.iter().filter_map(|n| col(n)).collect();
    let mut top: Vec<(f64, Vec<String>)> = Vec::with_capacity(k + 1);
    let mut rec = csv::StringRecord::new();
    loop {
        let line = rd.position().line() as usize;
        let at = Some(crate::error::Loc::Line(line));
        if !rd.read_record(&mut rec).map_err(|e| Error::data(path, at, "bad-row", e.to_string()))? {
            break;
        }
        if rec.len() == 1 && rec[0].is_empty() {
            continue;
        }
        if rec.len() != names.len() {
            return Err(Error::data(path, at, "field-count", format!("{} fields, the header has {}", rec.len(), names.len())));
        }
        if st.is_none_or(|c| &rec[c] != "ok") || fc.is_some_and(|c| &rec[c] != "true") {
            continue;
        }
        let key = oc.and_then(|c| rec[c].parse::<f64>().ok()).unwrap_or(f64::NAN);
        let before = |other: f64| if maximize { other.total_cmp(&key).is_ge() } else { other.total_cmp(&key).is_le() };
        let at = top.partition_point(|(o, _)| before(*o));
        if at < k {
            top.insert(at, (key, cols.iter().map(|&c| rec[c].to_string()).collect()));
            top.truncate(k);
        }
    }
    Ok((head, top.into_iter().map(|(_, r)| r).collect()))
}

/// Draw a walk-forward folder's charts and page.
pub fn render_walk(dir: &Path) -> Result<Vec<String>> {
    let windows = view::Table::read(&dir.join("walk_forward.csv"))?;
    let oos = view::Table::read(&dir.join("oos_equity.csv"))?;
    let mut names = charts::walk_charts(dir, &windows, &oos).map_err(drawing(dir))?;
    if let Some(m) = read_json(&dir.join("model.json"))? {
        names.extend(charts::model_charts(dir, &m).map_err(drawing(dir))?);
    }
    let wf = read_json(&dir.join("walk_forward.json"))?.unwrap_or_default();
    let title = format!("walk-forward {}", folder_label(dir));
    let mut figures = Vec::new();
    if let Some(o) = wf.get("objective") {
        figures.push(("objective".into(), html::num(o)));
    }
    if let Some(i) = wf.get("improvement") {
        figures.push(("out-of-sample improvement over the experiment's own parameters".into(), html::num(i)));
    }
    let stitched = wf.get("stitched").map(key_figures).unwrap_or_default();
    figures.extend(stitched.iter().map(|(k, v)| (format!("stitched {k}"), v.clone())));
    let mut blocks = vec![Block::Heading("Out of sample".into()), Block::Pairs(figures.clone()), Block::Heading("Charts".into())];
    blocks.extend(names.iter().map(|n| Block::Chart(n.clone(), caption(n))));
    blocks.push(Block::Heading("Windows".into()));
    blocks.push(Block::Table(windows.names.clone(), windows.rows.clone()));
    write_text(&dir.join("index.html"), &html::page(&title, &blocks))?;
    write_text(&dir.join("summary.md"), &html::summary_md(&title, &figures, ""))?;
    Ok(names)
}

/// Redraw whatever kind of folder `dir` is (run, optimization, walk-forward); `map` chooses
/// the two parameters of an optimization's objective map.
pub fn render(dir: &Path, map: Option<(&str, &str)>) -> Result<Vec<String>> {
    if dir.join("walk_forward.csv").exists() {
        render_walk(dir)
    } else if dir.join("trials.csv").exists() {
        render_optimize_with(dir, map)
    } else if dir.join("equity.csv").exists() {
        render_run(dir)
    } else {
        Err(Error::Input(format!(
            "{}: not a run, optimization or walk-forward folder (no equity.csv, trials.csv or walk_forward.csv)",
            dir.display()
        )))
    }
}

fn direction_max(dir: &Path) -> Result<(bool, Option<serde_json::Value>)> {
    let summary = read_json(&dir.join("optimize.json"))?;
    Ok((summary.as_ref().and_then(|s| s.get("direction")).and_then(|d| d.as_str()) != Some("minimize"), summary))
}

/// Several optimization folders side by side: best-so-far per search, and a summary table.
fn compare_searches(dirs: &[PathBuf], out: &Path) -> Result<Vec<String>> {
    let mut runs = Vec::new();
    let mut rows = Vec::new();
    for d in dirs {
        let (maximize, summary) = direction_max(d)?;
        let series =
            charts::trial_series(&d.join("trials.csv"), maximize).map_err(|m| Error::data(d.join("trials.csv"), None, "bad-trials", m))?;
        let get = |k: &str| summary.as_ref().and_then(|s| s.get(k)).map(html::num).unwrap_or_default();
        let method = get("method");
        let best_toml = std::fs::read_to_string(d.join("best.toml")).unwrap_or_default();
        let label = format!("{} {} ({})", experiment_name(&best_toml), folder_label(d), method);
        rows.push(vec![
            label.clone(),
            method,
            get("objective"),
            get("trials"),
            get("feasible"),
            get("best_objective"),
            get("deflated_sharpe"),
            get("pbo"),
        ]);
        runs.push((label, series));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let names = charts::compare_searches(out, &runs).map_err(drawing(out))?;
    let head: Vec<String> =
        ["search", "method", "objective", "trials", "feasible", "best", "deflated Sharpe", "PBO"].iter().map(|s| s.to_string()).collect();
    let mut blocks = vec![Block::Heading("Searches".into()), Block::Table(head.clone(), rows.clone()), Block::Heading("Charts".into())];
    blocks.extend(names.iter().map(|n| Block::Chart(n.clone(), "Best feasible objective so far, per search".into())));
    let title = format!("Comparison of {} searches", runs.len());
    write_text(&out.join("index.html"), &html::page(&title, &blocks))?;
    write_text(&out.join("summary.md"), &html::table_md(&title, &head, &rows))?;
    Ok(names)
}

/// Several run folders side by side in `out`: stats table and overlaid equity and drawdown; or
/// several optimization folders: their searches' best-so-far curves and results.
pub fn compare(dirs: &[PathBuf], out: &Path) -> Result<Vec<String>> {
    if dirs.iter().all(|d| d.join("trials.csv").exists() && !d.join("walk_forward.csv").exists()) {
        return compare_searches(dirs, out);
    }
    let mut runs = Vec::new();
    for d in dirs {
        if !d.join("equity.csv").exists() {
            return Err(Error::Input(format!(
                "{}: not a run folder (no equity.csv); compare takes run folders, or optimization folders only",
                d.display()
            )));
        }
        let v = view::load_run(d)?;
        runs.push((format!("{}/{}", experiment_name(&v.experiment), folder_label(d)), v));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let names = charts::compare_charts(out, &runs).map_err(drawing(out))?;
    let figs: Vec<Vec<(String, String)>> = runs.iter().map(|r| key_figures(&r.1.stats)).collect();
    let mut labels: Vec<String> = Vec::new();
    for f in &figs {
        for (k, _) in f {
            if !labels.contains(k) {
                labels.push(k.clone());
            }
        }
    }
    let head: Vec<String> = std::iter::once("figure".to_string()).chain(runs.iter().map(|r| r.0.clone())).collect();
    let rows: Vec<Vec<String>> = labels
        .iter()
        .map(|l| {
            std::iter::once(l.clone())
                .chain(figs.iter().map(|f| f.iter().find(|(k, _)| k == l).map_or("".into(), |x| x.1.clone())))
                .collect()
        })
        .collect();
    let mut blocks = vec![Block::Heading("Key figures".into()), Block::Table(head.clone(), rows.clone()), Block::Heading("Charts".into())];
    blocks.extend(names.iter().map(|n| Block::Chart(n.clone(), caption(n))));
    blocks.push(Block::Text(format!("Runs: {}", dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", "))));
    let title = format!("Comparison of {} runs", runs.len());
    write_text(&out.join("index.html"), &html::page(&title, &blocks))?;
    write_text(&out.join("summary.md"), &html::table_md(&title, &head, &rows))?;
    Ok(names)
}
