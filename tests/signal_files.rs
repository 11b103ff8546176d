//! Signal files: validation with file and line, timing (used at the close of the bar that holds
//! the stamp, never earlier), persistence, and the combiner in a run.

mod common;
use common::*;
use std::sync::Arc;
use tradelab::engine::{backtest, prepare};
use tradelab::experiment::{Experiment, LoadedExperiment};
use tradelab::signals::{file_streams, read_signal_file, NONE};

const HEAD: &str = "timestamp,symbol,direction,strength,confidence,source\n";

#[test]
fn bad_rows_are_named_by_line_and_rule() {
    let dir = tmp_dir("sigfiles_bad");
    for (name, row, rule) in [
        ("dir.csv", "2024-01-01T00:00:00Z,S0,up,strong,0.5,m\n", "bad-direction"),
        ("strength.csv", "2024-01-01T00:00:00Z,S0,long,huge,0.5,m\n", "bad-strength"),
        ("conf.csv", "2024-01-01T00:00:00Z,S0,long,strong,1.5,m\n", "confidence-out-of-range"),
        ("time.csv", "soon,S0,long,strong,0.5,m\n", "unparsable-timestamp"),
    ] {
        let p = dir.join(name);
        std::fs::write(&p, format!("{HEAD}2024-01-01T00:00:00Z,S0,long,weak,0.5,m\n{row}")).unwrap();
        let e = read_signal_file(&p).unwrap_err().to_string();
        assert!(e.contains(name) && e.contains("line 3") && e.contains(rule), "{e}");
    }
    let p = dir.join("cols.csv");
    std::fs::write(&p, "timestamp,symbol,direction\n").unwrap();
    assert!(read_signal_file(&p).unwrap_err().to_string().contains("missing-column"));
}

#[test]
fn a_signal_is_used_at_the_close_of_the_bar_holding_its_stamp_and_holds() {
    let dir = tmp_dir("sigfiles_timing");
    let p = dir.join("s.csv");
    // Bar 1 opens at 01:00; a prediction stamped 01:30 is known at bar 1's close.
    std::fs::write(&p, format!("{HEAD}2024-01-01T01:30:00Z,S0,long,very_strong,0.8,model\n2024-01-01T03:00:00Z,S0,flat,weak,1,model\n"))
        .unwrap();
    let md = market(&[(100.0, 100.0, 100.0, 100.0, 1e9); 6]);
    let rows = read_signal_file(&p).unwrap();
    let st = file_streams(&p, &rows, &md).unwrap();
    assert_eq!(st.len(), 1);
    assert_eq!(st[0].1.dir, vec![NONE, 1, 1, 0, 0, 0]);
    // In a run: decided at bar 1's close, filled at bar 2's open, sized by confidence 0.8.
    let text = format!(
        "[experiment]\nname = \"t\"\n[data]\npath = \"x\"\n[[signals.files]]\npath = \"{}\"\n[execution]\nfee_bps = 0\n",
        p.display()
    );
    let le = LoadedExperiment { exp: Experiment::from_toml(&text, "t.toml".as_ref()).unwrap(), file: "t.toml".into() };
    let prep = prepare(&le, Arc::new(md), &Default::default()).unwrap();
    let r = backtest(&le.exp, &prep);
    assert_eq!(r.fills[0].bar, 2);
    assert!(close(r.fills[0].qty * 100.0, 8_000.0, 1e-12));
    assert_eq!(r.fills[1].bar, 4);
    // A symbol the data does not have is an error naming the line.
    std::fs::write(&p, format!("{HEAD}2024-01-01T01:30:00Z,XYZ,long,weak,0.8,model\n")).unwrap();
    let rows = read_signal_file(&p).unwrap();
    let e = file_streams(&p, &rows, &market(&[(1.0, 1.0, 1.0, 1.0, 1.0); 2])).unwrap_err().to_string();
    assert!(e.contains("line 2") && e.contains("unknown-symbol"), "{e}");
}

/// The experiment files whose data lie inside the checkout (`bundled`), or outside it, in
/// `../shared` (the others).
fn experiment_files(bundled: bool) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|f| f.unwrap().path())
        .filter(|f| f.extension().and_then(|e| e.to_str()) == Some("toml"))
        .filter(|f| {
            let le = Experiment::load(f).unwrap();
            let inside = le.data_paths().iter().all(|p| {
                let p = if p.is_absolute() { p.clone() } else { f.parent().unwrap().join(p) };
                let mut parts = Vec::new();
                for c in p.components() {
                    match c {
                        std::path::Component::ParentDir => {
                            parts.pop();
                        }
                        c => parts.push(c),
                    }
                }
                parts.iter().collect::<std::path::PathBuf>().starts_with(root)
            });
            inside == bundled
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_example_runs_on_the_bundled_data_within_its_limits() {
    let files = experiment_files(true);
    assert!(files.len() >= 10, "{files:?}");
    examples_within_limits(&files, "examples");
}

#[test]
#[ignore = "needs ../shared"]
fn every_example_on_shared_data_runs_within_its_limits() {
    let files = experiment_files(false);
    assert!(files.len() >= 2, "{files:?}");
    examples_within_limits(&files, "examples_shared");
}

fn examples_within_limits(files: &[std::path::PathBuf], tag: &str) {
    let out = tmp_dir(tag);
    for f in files {
        let f = f.clone();
        let le = Experiment::load(&f).unwrap();
        let o = tradelab::runner::run_file(&f, &out).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
        let weights = std::fs::read_to_string(o.dir.join("weights.csv")).unwrap();
        // Symbols and cash; target columns follow with [rebalance].
        let cols = weights.lines().next().unwrap().split(',').position(|c| c == "cash").unwrap();
        for line in weights.lines().skip(1) {
            let v: Vec<f64> = line.split(',').skip(1).take(cols).map(|x| x.parse().unwrap()).collect();
            assert!(close(v.iter().sum::<f64>(), 1.0, 1e-9), "{}: {line}", f.display());
            if !le.exp.portfolio.allow_short {
                assert!(v.iter().all(|w| *w >= -1e-9), "{}: {line}", f.display());
            }
        }
        match &o.stats.rebalance {
            // A rebalanced portfolio holds its positions: it trades by rebalancing, and the issue's
            // bar is 99% of rebalances within tolerance after their fills.
            Some(r) => assert!(r.rebalances > 5 && r.rebalance_accuracy >= 0.99, "{}: {r:?}", f.display()),
            None => assert!(o.stats.trades > 5, "{}: {} trades", f.display(), o.stats.trades),
        }
    }
}

#[test]
fn signals_never_reach_back_in_time() {
    let dir = tmp_dir("sigfiles_time");
    // Six hourly bars from 00:00: the last ends at 06:00.
    let md = market(&[(100.0, 100.0, 100.0, 100.0, 1e9); 6]);
    let streams = |name: &str, body: &str| {
        let p = dir.join(name);
        std::fs::write(&p, format!("{HEAD}{body}")).unwrap();
        let rows = read_signal_file(&p).unwrap();
        file_streams(&p, &rows, &md).map(|v| v.into_iter().map(|(_, st)| st.dir).collect::<Vec<_>>())
    };
    // A row stamped after the last bar's end is dropped, not put on the last bar; 05:59 is in it.
    let dirs = streams("future.csv", "2024-01-01T01:00:00Z,S0,long,strong,1,m\n2024-01-01T06:00:00Z,S0,short,strong,1,m\n").unwrap();
    assert_eq!(dirs, vec![vec![NONE, 1, 1, 1, 1, 1]]);
    let dirs = streams("last.csv", "2024-01-01T01:00:00Z,S0,long,strong,1,m\n2024-01-01T05:59:00Z,S0,short,strong,1,m\n").unwrap();
    assert_eq!(dirs, vec![vec![NONE, 1, 1, 1, 1, -1]]);
    // Within a bar the latest stamp wins, whatever the file's order.
    let dirs = streams("order.csv", "2024-01-01T02:50:00Z,S0,short,strong,1,m\n2024-01-01T02:10:00Z,S0,long,strong,1,m\n").unwrap();
    assert_eq!(dirs, vec![vec![NONE, NONE, -1, -1, -1, -1]]);
    // The same stamp twice: the same values are fine, different ones are an error naming both.
    let same = "2024-01-01T02:00:00Z,S0,long,strong,1,m\n";
    assert!(streams("dup.csv", &format!("{same}{same}")).is_ok());
    let e = streams("clash.csv", &format!("{same}2024-01-01T02:00:00Z,S0,short,strong,1,m\n")).unwrap_err().to_string();
    assert!(e.contains("clash.csv") && e.contains("line 3") && e.contains("line 2") && e.contains("conflicting-signal"), "{e}");
    // Nothing usable: header only, or every row outside the bars.
    let e = streams("empty.csv", "").unwrap_err().to_string();
    assert!(e.contains("empty.csv") && e.contains("no-rows"), "{e}");
    let e = streams("outside.csv", "2023-01-01T00:00:00Z,S0,long,strong,1,m\n2025-01-01T00:00:00Z,S0,long,strong,1,m\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("outside.csv") && e.contains("no-signal-in-range"), "{e}");
}
