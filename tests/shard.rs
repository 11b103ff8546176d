//! A search spread over processes as a Slurm job array or a Kubernetes indexed job would spread
//! it (`optimize --shard I/N --out DIR`, then `merge`), against the same search on one machine:
//! the merged folder must hold the same trials, best.toml, optimize.json and top equity curves
//! (durations aside), with one shard killed partway and run again; missing shards, unfinished
//! ones and shards of another search are refused with exit 2, naming them.

use std::path::{Path, PathBuf};
use std::process::Command;

fn tradelab(args: &[&str], fault: Option<&str>) -> std::process::Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tradelab"));
    c.args(args).env_remove("TRADELAB_FAULT").env_remove("SLURM_CPUS_PER_TASK");
    if let Some(f) = fault {
        c.env("TRADELAB_FAULT", f);
    }
    c.output().expect("tradelab runs")
}

/// An empty folder of this test's own.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("tradelab_shard_{}_{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(args: &[&str]) {
    let out = tradelab(args, None);
    assert!(out.status.success(), "tradelab {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn experiment(dir: &Path, method: &str, seed: u64) -> PathBuf {
    let data = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    // The grid reads two files; the others one, as `path` (merged best.toml must keep the form).
    let data_line = if method == "grid" {
        format!("paths = [\"{}\", \"{}\"]", data.join("BTCUSDT_1h.csv").display(), data.join("ETHUSDT_1h.csv").display())
    } else {
        format!("path = \"{}\"", data.join("BTCUSDT_1h.csv").display())
    };
    let text = format!(
        "[experiment]\nname = \"sharded\"\nseed = {seed}\n[data]\n{data_line}\n\
         [[signals.technical]]\nkind = \"sma_cross\"\nfast = 5\nslow = 20\n\
         [decision]\nfraction = 0.5\n[risk]\nstop_loss = 0.05\n[execution]\nfee_bps = 10\n\
         [optimize]\nmethod = \"{method}\"\nobjective = \"sharpe\"\nbudget = 90\n\
         rules = [\"signals.technical[0].fast < signals.technical[0].slow\"]\n\
         [optimize.space]\n\"signals.technical[0].fast\" = [2, 20]\n\"signals.technical[0].slow\" = [10, 40]\n\
         [optimize.walk_forward]\nwindows = 3\ntrain_ratio = 2\n"
    );
    let path = dir.join(format!("{method}_{seed}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// The one run folder under `root/sharded`.
fn run_dir(root: &Path) -> PathBuf {
    let mut d: Vec<PathBuf> = std::fs::read_dir(root.join("sharded")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(d.len(), 1, "{d:?}");
    d.pop().unwrap()
}

/// A CSV without its `duration_ms` column; a JSON file without its `seconds`.
fn comparable(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if path.extension().is_some_and(|e| e == "json") {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if let Some(o) = v.as_object_mut() {
            o.remove("seconds");
        }
        return serde_json::to_string_pretty(&v).unwrap();
    }
    let mut rows = text.lines().map(|l| l.split(',').map(String::from).collect::<Vec<_>>());
    let head = rows.next().unwrap_or_default();
    let skip = head.iter().position(|h| h == "duration_ms");
    std::iter::once(head.clone())
        .chain(rows)
        .map(|r| r.iter().enumerate().filter(|(i, _)| Some(*i) != skip).map(|(_, v)| v.as_str()).collect::<Vec<_>>().join(","))
        .collect::<Vec<_>>()
        .join("\n")
}

fn same_folders(single: &Path, merged: &Path) {
    for f in ["trials.csv", "trial_blocks.csv", "best.toml", "optimize.json", "top_equity.csv", "fingerprint.json"] {
        assert_eq!(comparable(&single.join(f)), comparable(&merged.join(f)), "{f} differs");
    }
}

#[test]
fn a_sharded_grid_with_a_killed_shard_merges_into_the_single_machine_search() {
    let tmp = scratch("grid");
    let t = tmp.as_path();
    let exp = experiment(t, "grid", 3);
    let e = exp.to_str().unwrap();
    let single = t.join("single");
    ok(&["-q", "optimize", e, "--out", single.to_str().unwrap()]);
    let shards = t.join("shards");
    let s = shards.to_str().unwrap();
    ok(&["-q", "optimize", e, "--shard", "0/3", "--out", s]);
    // Shard 1 dies right after logging candidate 31 (its eleventh): as a node lost mid-job.
    let killed = tradelab(&["-q", "optimize", e, "--shard", "1/3", "--out", s], Some("row:31"));
    assert!(!killed.status.success());
    let logged = std::fs::read_to_string(shards.join("shard-1-of-3/trials.csv")).unwrap();
    assert_eq!(logged.lines().count(), 1 + 11, "{logged}");
    // Merging now names what is missing and what is unfinished.
    let out = tradelab(&["-q", "merge", s, "--out", t.join("m").to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing shard(s) 2/3"), "{}", String::from_utf8_lossy(&out.stderr));
    // Shard 2 dies between candidate 32's block sums and its row: run again, its block sums are
    // in its log twice, and the merge takes them once.
    let killed = tradelab(&["-q", "optimize", e, "--shard", "2/3", "--out", s], Some("blocks:32"));
    assert!(!killed.status.success());
    ok(&["-q", "optimize", e, "--shard", "2/3", "--out", s]);
    let sums = std::fs::read_to_string(shards.join("shard-2-of-3/trial_blocks.csv")).unwrap();
    assert_eq!(sums.lines().filter(|l| l.starts_with("32,")).count(), 2, "{sums}");
    let out = tradelab(&["-q", "merge", s, "--out", t.join("m").to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("shard 1/3"), "{}", String::from_utf8_lossy(&out.stderr));
    let status = tradelab(&["merge", "--status", s], None);
    let status = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.contains("shard 1/3: not finished (11 trials logged)") && status.contains("shard 2/3: finished"), "{status}");
    // Run again (a requeued job): it resumes its log, and the merge is the single search.
    ok(&["-q", "optimize", e, "--shard", "1/3", "--out", s]);
    ok(&["-q", "optimize", e, "--shard", "1/3", "--out", s]);
    let merged = t.join("merged");
    ok(&["-q", "merge", s, "--out", merged.to_str().unwrap()]);
    same_folders(&run_dir(&single), &run_dir(&merged));
    // The grid was split, not repeated: 3 shards hold every candidate once.
    let rows = |i: usize| std::fs::read_to_string(shards.join(format!("shard-{i}-of-3/trials.csv"))).unwrap().lines().count() - 1;
    let total = std::fs::read_to_string(run_dir(&single).join("trials.csv")).unwrap().lines().count() - 1;
    assert_eq!(rows(0) + rows(1) + rows(2), total);
    assert!(total > 300, "{total} trials");
}

#[test]
fn a_sharded_random_search_merges_and_foreign_shards_are_refused() {
    let tmp = scratch("random");
    let t = tmp.as_path();
    let exp = experiment(t, "random", 4);
    let e = exp.to_str().unwrap();
    let single = t.join("single");
    ok(&["-q", "optimize", e, "--out", single.to_str().unwrap()]);
    let shards = t.join("shards");
    let s = shards.to_str().unwrap();
    for i in ["0/2", "1/2"] {
        ok(&["-q", "optimize", e, "--shard", i, "--out", s]);
    }
    let merged = t.join("merged");
    ok(&["-q", "merge", &format!("{s}/shard-1-of-2"), &format!("{s}/shard-0-of-2"), "--out", merged.to_str().unwrap()]);
    same_folders(&run_dir(&single), &run_dir(&merged));
    // A shard of another search (another seed) in place of shard 1.
    let other = experiment(t, "random", 5);
    let foreign = t.join("foreign");
    ok(&["-q", "optimize", other.to_str().unwrap(), "--shard", "1/2", "--out", foreign.to_str().unwrap()]);
    let out = tradelab(&["-q", "merge", &format!("{s}/shard-0-of-2"), foreign.join("shard-1-of-2").to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fingerprints differ"), "{}", String::from_utf8_lossy(&out.stderr));
    // The same shard twice.
    let out = tradelab(&["-q", "merge", &format!("{s}/shard-0-of-2"), &format!("{s}/shard-0-of-2")], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("given twice"), "{}", String::from_utf8_lossy(&out.stderr));
    // A genetic search cannot be cut into shards.
    let ga = experiment(t, "genetic", 4);
    let out = tradelab(&["-q", "optimize", ga.to_str().unwrap(), "--shard", "0/2", "--out", s], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_sharded_walk_forward_stitches_into_the_single_machine_one() {
    let tmp = scratch("walk");
    let t = tmp.as_path();
    let exp = experiment(t, "random", 6);
    let e = exp.to_str().unwrap();
    let single = t.join("single");
    ok(&["-q", "walk-forward", e, "--out", single.to_str().unwrap()]);
    let shards = t.join("shards");
    let s = shards.to_str().unwrap();
    ok(&["-q", "walk-forward", e, "--shard", "1/2", "--out", s]);
    let out = tradelab(&["-q", "merge", s, "--out", t.join("m").to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    ok(&["-q", "walk-forward", e, "--shard", "0/2", "--out", s]);
    let merged = t.join("merged");
    ok(&["-q", "merge", s, "--out", merged.to_str().unwrap()]);
    let dir = |root: &Path| {
        let mut d: Vec<PathBuf> = std::fs::read_dir(root.join("sharded_walk_forward")).unwrap().map(|e| e.unwrap().path()).collect();
        assert_eq!(d.len(), 1);
        d.pop().unwrap()
    };
    let (a, b) = (dir(&single), dir(&merged));
    for f in ["walk_forward.json", "walk_forward.csv", "oos_equity.csv"] {
        assert_eq!(comparable(&a.join(f)), comparable(&b.join(f)), "{f} differs");
    }
    for k in 0..3 {
        for f in ["trials.csv", "trial_blocks.csv", "best.toml"] {
            let f = format!("window_{k}/{f}");
            assert_eq!(comparable(&a.join(&f)), comparable(&b.join(&f)), "{f} differs");
        }
        assert!(!b.join(format!("window_{k}/window.json")).exists());
    }
}

/// Run a search in ask/tell rounds, each round's candidates evaluated by two processes; returns
/// the number of rounds.
fn in_rounds(e: &str, rounds: &Path, out: &Path) -> usize {
    for k in 0..200 {
        let asked = tradelab(&["optimize", e, "--ask", rounds.to_str().unwrap(), "--out", out.to_str().unwrap()], None);
        assert!(asked.status.success(), "{}", String::from_utf8_lossy(&asked.stderr));
        let text = String::from_utf8_lossy(&asked.stdout).to_string();
        if text.starts_with("search finished") {
            return k;
        }
        let path = text.trim().rsplit(" in ").next().unwrap().to_string();
        assert!(path.ends_with("candidates.json"), "{text}");
        // Asking again before telling is refused.
        let again = tradelab(&["-q", "optimize", e, "--ask", rounds.to_str().unwrap()], None);
        assert_eq!(again.status.code(), Some(2));
        ok(&["-q", "evaluate", &path, "--shard", "1/2"]);
        ok(&["-q", "evaluate", &path, "--shard", "0/2"]);
        ok(&["-q", "optimize", e, "--tell", rounds.to_str().unwrap()]);
    }
    panic!("no end after 200 rounds");
}

#[test]
fn genetic_and_bayesian_searches_in_ask_tell_rounds_equal_the_single_machine_ones() {
    let tmp = scratch("rounds");
    let t = tmp.as_path();
    for method in ["genetic", "bayesian"] {
        let exp = experiment(t, method, 8);
        let e = exp.to_str().unwrap();
        let single = t.join(format!("{method}_single"));
        ok(&["-q", "optimize", e, "--out", single.to_str().unwrap()]);
        let merged = t.join(format!("{method}_rounds_out"));
        let rounds = in_rounds(e, &t.join(format!("{method}_rounds")), &merged);
        assert!(rounds >= 3, "{method}: {rounds} rounds");
        same_folders(&run_dir(&single), &run_dir(&merged));
    }
}
