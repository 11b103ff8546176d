//! Plotted reports: every chart is a valid, non-blank PNG and an SVG; the page links only files
//! that exist; `tradelab report` redraws byte-identical charts from the saved files; optimize,
//! walk-forward and compare folders get theirs.

mod common;
use common::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use tradelab::runner::run_file;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Decode a PNG: (width, height, distinct colours, share of non-white pixels).
fn png_stats(path: &Path) -> (u32, u32, usize, f64) {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    let px = &buf[..info.buffer_size()];
    let mut colours = BTreeSet::new();
    let mut ink = 0usize;
    for p in px.chunks(ch) {
        colours.insert(p[..3.min(ch)].to_vec());
        if p[..3.min(ch)].iter().any(|c| *c < 250) {
            ink += 1;
        }
    }
    (info.width, info.height, colours.len(), ink as f64 / (px.len() / ch) as f64)
}

fn check_charts(dir: &Path, names: &[&str]) {
    for n in names {
        let png = dir.join(format!("{n}.png"));
        let (w, h, colours, ink) = png_stats(&png);
        assert!(w >= 800 && h >= 150, "{}: {w}x{h}", png.display());
        assert!(colours >= 6, "{}: {colours} colours", png.display());
        assert!(ink > 0.02, "{}: {:.3} of the pixels drawn", png.display(), ink);
        let svg = std::fs::read_to_string(dir.join(format!("{n}.svg"))).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "{n}.svg");
        assert!(svg.matches("<text").count() >= 5 && svg.len() > 5_000, "{n}.svg looks empty");
    }
}

/// Every `src="..."` and `href="..."` of the page names a file in its folder.
fn check_links(dir: &Path) -> usize {
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained");
    let mut n = 0;
    for attr in ["src=\"", "href=\""] {
        for part in html.split(attr).skip(1) {
            let target = &part[..part.find('"').unwrap()];
            assert!(dir.join(target).is_file(), "{}: links {target}, which is missing", dir.display());
            n += 1;
        }
    }
    n
}

#[test]
fn a_run_gets_every_chart_a_page_and_a_summary() {
    let out = tmp_dir("report_run");
    let o = run_file(&root().join("experiments/regime_trend.toml"), &out).unwrap();
    let names = [
        "equity",
        "equity_log",
        "drawdown",
        "price_BTC",
        "price_ETH",
        "price_SOL",
        "price_BNB",
        "monthly_returns",
        "rolling",
        "trade_returns",
        "weights",
    ];
    check_charts(&o.dir, &names);
    // Each chart shown as PNG and linked as SVG.
    assert_eq!(check_links(&o.dir), 2 * names.len());
    let md = std::fs::read_to_string(o.dir.join("summary.md")).unwrap();
    let total = format!("| total return | {:.2}% |", 100.0 * o.stats.total_return);
    assert!(md.contains(&total), "{md}");
    let html = std::fs::read_to_string(o.dir.join("index.html")).unwrap();
    assert!(html.contains("[regime.overrides.high_vol.decision]"), "the resolved experiment is on the page");
}

#[test]
fn report_redraws_the_same_charts_from_saved_files() {
    let out = tmp_dir("report_again");
    let o = run_file(&root().join("experiments/portfolio_60_40.toml"), &out).unwrap();
    let before: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&o.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("png" | "svg" | "html" | "md")))
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    assert!(before.len() >= 18);
    for (p, _) in &before {
        std::fs::remove_file(p).unwrap();
    }
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tradelab")).args(["report", "-q"]).arg(&o.dir).status().unwrap();
    assert!(status.success());
    for (p, bytes) in &before {
        assert!(std::fs::read(p).unwrap() == *bytes, "{} differs when redrawn", p.display());
    }
    check_charts(&o.dir, &["weights", "equity", "drawdown"]);
}

#[test]
fn optimize_walk_forward_and_compare_reports() {
    let out = tmp_dir("report_opt");
    let bin = env!("CARGO_BIN_EXE_tradelab");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(args).arg("--out").arg(&out).arg("-q").output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    };
    let exp = root().join("experiments/genetic_search.toml");
    run(&["optimize", exp.to_str().unwrap()]);
    let dir = out.join("genetic_search/0001");
    check_charts(&dir, &["convergence", "param_map", "params", "top_equity"]);
    check_links(&dir);
    // top_equity.csv holds the best trials, best first: its first curve ends at the best trial's
    // final equity.
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("optimize.json")).unwrap()).unwrap();
    let top = std::fs::read_to_string(dir.join("top_equity.csv")).unwrap();
    let head = top.lines().next().unwrap();
    assert_eq!(head.split(',').nth(1).unwrap(), format!("trial_{}", json["best_trial"]));
    let last: f64 = top.lines().last().unwrap().split(',').nth(1).unwrap().parse().unwrap();
    assert!(close(last, json["best_stats"]["final_equity"].as_f64().unwrap(), 1e-9));

    // A trials.csv row cut short (an edited file) is named by its line, not skipped.
    let bad = out.join("bad_trials");
    std::fs::create_dir_all(&bad).unwrap();
    for f in ["optimize.json", "best.toml", "top_equity.csv"] {
        std::fs::copy(dir.join(f), bad.join(f)).unwrap();
    }
    let trials = std::fs::read_to_string(dir.join("trials.csv")).unwrap();
    let mut lines: Vec<String> = trials.lines().map(String::from).collect();
    lines[2] = lines[2].split(',').take(3).collect::<Vec<_>>().join(",");
    std::fs::write(bad.join("trials.csv"), lines.join("\n") + "\n").unwrap();
    let o = std::process::Command::new(bin).args(["report", "-q"]).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("trials.csv") && err.contains("line 3") && err.contains("3 fields"), "{err}");

    // The same search by random sampling, compared with the genetic one; the map redrawn over
    // two chosen parameters.
    run(&["optimize", root().join("experiments/genetic_search.toml").to_str().unwrap(), "--set", "optimize.method=\"random\""]);
    let cmp = out.join("cmp_search");
    let o = std::process::Command::new(bin)
        .args(["compare", "-q"])
        .arg(&dir)
        .arg(out.join("genetic_search/0002"))
        .arg("--out")
        .arg(&cmp)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_charts(&cmp, &["convergence"]);
    check_links(&cmp);
    let md = std::fs::read_to_string(cmp.join("summary.md")).unwrap();
    assert!(md.contains("(genetic)") && md.contains("(random)"), "{md}");
    let map = "signals.technical[0].fast,signals.technical[0].slow";
    let o = std::process::Command::new(bin).args(["report", "-q", "--map", map]).arg(&dir).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(dir.join("param_map.svg")).unwrap();
    assert!(svg.contains("signals.technical[0].fast and signals.technical[0].slow"));
    let o = std::process::Command::new(bin).args(["report", "--map", "nope,risk.trailing_stop"]).arg(&dir).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no parameter nope"));

    let exp = root().join("experiments/walk_forward.toml");
    run(&["walk-forward", exp.to_str().unwrap()]);
    let wf = std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().path()).find(|p| p.to_string_lossy().ends_with("_walk_forward")).unwrap();
    check_charts(&wf.join("0001"), &["walk_forward", "oos_equity"]);
    check_links(&wf.join("0001"));

    let a = run_file(&root().join("experiments/quickstart.toml"), &out).unwrap().dir;
    let b = run_file(&root().join("experiments/sma_long_short.toml"), &out).unwrap().dir;
    let cmp = out.join("cmp");
    let o = std::process::Command::new(bin).args(["compare", "-q"]).arg(&a).arg(&b).arg("--out").arg(&cmp).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    check_charts(&cmp, &["equity", "drawdown"]);
    check_links(&cmp);
    let md = std::fs::read_to_string(cmp.join("summary.md")).unwrap();
    assert!(md.contains("quickstart/") && md.contains("sma_long_short/"), "{md}");
    // Not a run folder: a clear error, exit code 2.
    let o = std::process::Command::new(bin).args(["report"]).arg(&out).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a run, optimization or walk-forward folder"));
}
