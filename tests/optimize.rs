//! Optimizers: determinism across thread counts, resume, constraints, categorical dimensions,
//! rules, exact re-runs of best.toml, and GA / Bayesian search against random search.

mod common;
use common::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use tradelab::experiment::Experiment;
use tradelab::optimize::{bayes::bo_search, genetic::ga_search, genetic::GaSettings, latin_hypercube, run_optimize, OptimizeOptions};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// An experiment on the bundled BTC bars (a 4,000-bar slice) with an [optimize] table.
fn experiment(dir: &Path, optimize: &str) -> tradelab::experiment::LoadedExperiment {
    let text = format!(
        "[experiment]\nname = \"opt\"\nseed = 3\n[data]\npath = \"{}\"\nsymbols = [\"BTC\"]\nend = \"2023-06-17T00:00:00Z\"\n\
         [[signals.technical]]\nkind = \"sma_cross\"\nfast = 10\nslow = 40\n[risk]\nstop_loss = 0.05\n[execution]\nfee_bps = 10\n{optimize}",
        root().join("data/synth").display()
    );
    let file = dir.join("opt.toml");
    std::fs::write(&file, text).unwrap();
    Experiment::load(&file).unwrap()
}

const SPACE: &str = "rules = [\"signals.technical[0].fast < signals.technical[0].slow\"]\n[optimize.space]\n\
    \"signals.technical[0].fast\" = [3, 40]\n\"signals.technical[0].slow\" = [20, 200]\n\"risk.stop_loss\" = { min = 0.01, max = 0.2, log = true }\n";

fn optimize(
    le: &tradelab::experiment::LoadedExperiment,
    out: &Path,
    jobs: usize,
    resume: Option<PathBuf>,
) -> (PathBuf, tradelab::optimize::Summary) {
    let opts = OptimizeOptions { out_root: out.to_path_buf(), resume, jobs: Some(jobs), quiet: true };
    run_optimize(le, &le.data_paths(), &opts).unwrap()
}

/// trials.csv without the duration and reason columns (wall time is not part of the
/// guarantee; these tests' reasons hold no comma).
fn trials(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("trials.csv")).unwrap().lines().map(|l| l.rsplitn(3, ',').last().unwrap().to_string()).collect()
}

#[test]
fn every_method_gives_the_same_trials_on_any_thread_count() {
    for method in ["grid", "random", "genetic", "bayesian"] {
        let dir = tmp_dir(&format!("det_{method}"));
        let extra = if method == "grid" { "grid_points = 3\n" } else { "budget = 24\npopulation = 8\ninitial = 6\nbatch = 3\n" };
        let le = experiment(&dir, &format!("[optimize]\nmethod = \"{method}\"\n{extra}{SPACE}"));
        let (a, sa) = optimize(&le, &dir.join("j1"), 1, None);
        let (b, sb) = optimize(&le, &dir.join("j2"), 2, None);
        let (ta, tb) = (trials(&a), trials(&b));
        assert!(ta.len() > 10, "{method}: {} trials", ta.len());
        assert_eq!(ta, tb, "{method}");
        assert_eq!(sa.best_params, sb.best_params, "{method}");
        assert_eq!(std::fs::read_to_string(a.join("best.toml")).unwrap(), std::fs::read_to_string(b.join("best.toml")).unwrap());
    }
}

#[test]
fn resume_finishes_an_interrupted_search_without_repeating_trials() {
    for method in ["random", "bayesian"] {
        let dir = tmp_dir(&format!("resume_{method}"));
        let le = experiment(&dir, &format!("[optimize]\nmethod = \"{method}\"\nbudget = 20\ninitial = 6\nbatch = 2\n{SPACE}"));
        let (full, _) = optimize(&le, &dir.join("full"), 2, None);
        // Interrupt: keep the header and 9 trials, plus half a line as a kill would leave.
        let text = std::fs::read_to_string(full.join("trials.csv")).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let cut = dir.join("cut/opt/0001");
        std::fs::create_dir_all(&cut).unwrap();
        let kept = lines[..10].join("\n") + "\n" + &lines[10][..lines[10].len() / 2];
        std::fs::write(cut.join("trials.csv"), &kept).unwrap();
        std::fs::copy(full.join("fingerprint.json"), cut.join("fingerprint.json")).unwrap();
        let (resumed, _) = optimize(&le, &dir.join("cut"), 1, Some(cut.clone()));
        assert_eq!(resumed, cut);
        assert_eq!(trials(&full), trials(&cut), "{method}");
        // The 9 finished trials were read back, not run again: their lines (durations included)
        // are untouched.
        let after = std::fs::read_to_string(cut.join("trials.csv")).unwrap();
        assert_eq!(after.lines().take(10).collect::<Vec<_>>(), lines[..10].to_vec());
    }
}

#[test]
fn resume_of_a_run_killed_while_writing_its_header_starts_afresh() {
    let dir = tmp_dir("resume_header");
    let le = experiment(&dir, &format!("[optimize]\nmethod = \"random\"\nbudget = 12\n{SPACE}"));
    let (full, _) = optimize(&le, &dir.join("full"), 2, None);
    let text = std::fs::read_to_string(full.join("trials.csv")).unwrap();
    let cut = dir.join("cut/opt/0001");
    std::fs::create_dir_all(&cut).unwrap();
    // Half the header and no newline; the block sums' file holds its whole header.
    std::fs::write(cut.join("trials.csv"), &text[..text.find('\n').unwrap() / 2]).unwrap();
    let blocks = std::fs::read_to_string(full.join("trial_blocks.csv")).unwrap();
    std::fs::write(cut.join("trial_blocks.csv"), blocks.lines().next().unwrap().to_string() + "\n").unwrap();
    std::fs::copy(full.join("fingerprint.json"), cut.join("fingerprint.json")).unwrap();
    optimize(&le, &dir.join("cut"), 1, Some(cut.clone()));
    assert_eq!(trials(&full), trials(&cut));
    assert_eq!(std::fs::read_to_string(cut.join("trial_blocks.csv")).unwrap(), blocks);
}

#[test]
fn best_toml_reruns_to_the_recorded_statistics() {
    let dir = tmp_dir("best_rerun");
    let le = experiment(&dir, &format!("[optimize]\nmethod = \"random\"\nbudget = 12\n{SPACE}"));
    let (run, s) = optimize(&le, &dir.join("out"), 2, None);
    let out = Command::new(env!("CARGO_BIN_EXE_tradelab"))
        .args(["-q", "run"])
        .arg(run.join("best.toml"))
        .arg("--out")
        .arg(dir.join("rerun"))
        .status()
        .unwrap();
    assert!(out.success());
    let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("rerun/opt/0001/stats.json")).unwrap()).unwrap();
    assert_eq!(stats["sharpe"].as_f64().unwrap(), s.best_objective);
    assert_eq!(stats["total_return"].as_f64().unwrap(), s.best_stats.total_return);
    // The trial's row says the same.
    let row = std::fs::read_to_string(run.join("trials.csv")).unwrap().lines().nth(s.best_trial + 1).unwrap().to_string();
    assert!(row.contains(&format!(",{},", s.best_objective)), "{row}");
}

use std::process::Command;

#[test]
fn constraints_rank_infeasible_candidates_last_and_keep_them() {
    let dir = tmp_dir("constraints");
    let le = experiment(&dir, &format!("[optimize]\nmethod = \"random\"\nbudget = 16\nconstraints = [\"trades >= 1000000\"]\n{SPACE}"));
    let (run, s) = optimize(&le, &dir.join("none"), 2, None);
    assert_eq!((s.trials, s.feasible), (16, 0));
    assert!(std::fs::read_to_string(run.join("trials.csv")).unwrap().lines().skip(1).all(|l| l.contains(",false,")));
    // With none feasible the command names its pick as the nearest miss, not the best: here the
    // trial with the most trades (the smallest shortfall from a million), the earliest of equals.
    let text = std::fs::read_to_string(run.join("trials.csv")).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "trades").unwrap();
    let trades: Vec<f64> = text.lines().skip(1).map(|l| l.split(',').nth(col).unwrap().parse().unwrap()).collect();
    let most = (0..trades.len()).fold(0, |b, i| if trades[i] > trades[b] { i } else { b });
    let out = Command::new(env!("CARGO_BIN_EXE_tradelab"))
        .args(["optimize", dir.join("opt.toml").to_str().unwrap(), "-j", "2", "--out"])
        .arg(dir.join("cli"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("(0 feasible)"), "{stdout}");
    assert!(stdout.contains(&format!("no trial met the constraints; the nearest miss is trial {most}:")), "{stdout}");
    let page = std::fs::read_to_string(dir.join("cli/opt/0001/index.html")).unwrap();
    assert!(page.contains("The nearest miss's statistics (no trial met the constraints)"), "the report names its pick as the nearest miss");
    let le = experiment(&dir, &format!("[optimize]\nmethod = \"random\"\nbudget = 16\nconstraints = [\"max_drawdown <= 0.2\"]\n{SPACE}"));
    let (run, s) = optimize(&le, &dir.join("some"), 2, None);
    assert!(s.feasible > 0 && s.feasible < 16, "{} feasible", s.feasible);
    assert!(s.best_stats.max_drawdown <= 0.2);
    // Every feasible trial outranks every infeasible one.
    let rows: Vec<(bool, f64)> = std::fs::read_to_string(run.join("trials.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[7] == "true", f[6].parse().unwrap())
        })
        .collect();
    let worst_ok = rows.iter().filter(|r| r.0).map(|r| r.1).fold(f64::INFINITY, f64::min);
    let best_bad = rows.iter().filter(|r| !r.0).map(|r| r.1).fold(f64::NEG_INFINITY, f64::max);
    assert!(worst_ok > best_bad);
}

#[test]
fn grid_rules_and_categorical_dimensions() {
    let dir = tmp_dir("grid_rules");
    // fast in 3..=12, slow in 5..=14: pairs with fast < slow.
    let le = experiment(
        &dir,
        "[optimize]\nmethod = \"grid\"\nrules = [\"signals.technical[0].fast < signals.technical[0].slow\"]\n[optimize.space]\n\
         \"signals.technical[0].fast\" = [3, 12]\n\"signals.technical[0].slow\" = [5, 14]\n\"signals.technical[0].kind\" = { choices = [\"sma_cross\", \"ema_cross\"] }\n",
    );
    let (run, s) = optimize(&le, &dir.join("out"), 2, None);
    let want: usize = (3..=12).map(|f: usize| (5..=14).filter(|&sl| f < sl).count()).sum::<usize>() * 2;
    assert_eq!(s.trials, want);
    let text = std::fs::read_to_string(run.join("trials.csv")).unwrap();
    assert!(text.contains(",ema_cross,") && text.contains(",sma_cross,"));
    assert!(text.lines().skip(1).all(|l| l.contains(",ok,")));
}

#[test]
fn bad_optimize_tables_name_their_key() {
    let dir = tmp_dir("bad_opt");
    let file = dir.join("bad.toml");
    for (body, key) in [
        ("objective = \"sharp\"\n[optimize.space]\n\"risk.stop_loss\" = [0.01, 0.1]\n", "optimize.objective"),
        ("[optimize.space]\n\"risk.stop_loss\" = [0.1, 0.01]\n", "optimize.space.\"risk.stop_loss\""),
        ("[optimize.space]\n\"risk.stop_lose\" = [0.01, 0.1]\n", "optimize.space.\"risk.stop_lose\""),
        ("constraints = [\"drawdown < 1\"]\n[optimize.space]\n\"risk.stop_loss\" = [0.01, 0.1]\n", "optimize.constraints[0]"),
    ] {
        std::fs::write(&file, format!("[experiment]\nname = \"x\"\n[data]\npath = \"y\"\n[optimize]\n{body}")).unwrap();
        let le = Experiment::load(&file).unwrap();
        let (k, msg) = tradelab::optimize::check_config(&le.exp, le.exp.optimize.as_ref().unwrap()).unwrap_err();
        assert!(k.contains(key), "{k}: {msg}");
    }
}

fn branin(u: &[f64]) -> f64 {
    let (x1, x2) = (-5.0 + 15.0 * u[0], 15.0 * u[1]);
    let pi = std::f64::consts::PI;
    (x2 - 5.1 / (4.0 * pi * pi) * x1 * x1 + 5.0 / pi * x1 - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * pi)) * x1.cos() + 10.0
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[test]
fn genetic_and_bayesian_beat_random_search_on_branin() {
    // Branin's minimum is 0.397887 (an independent check of the function at a known minimizer).
    assert!((branin(&[(std::f64::consts::PI + 5.0) / 15.0, 2.275 / 15.0]) - 0.397887).abs() < 1e-6);
    let budget = 40;
    let seeds = 0..7u64;
    let random = median(
        seeds
            .clone()
            .map(|s| latin_hypercube(budget, 2, &mut ChaCha8Rng::seed_from_u64(s)).iter().map(|p| branin(p)).fold(f64::INFINITY, f64::min))
            .collect(),
    );
    let ga = median(
        seeds
            .clone()
            .map(|s| {
                let mut best = f64::INFINITY;
                let eval = |g: &[f64]| (-branin(g), branin(g));
                let settings = GaSettings { population: 10, tournament: 3, mutation_rate: 0.3, elitism: 2 };
                ga_search(2, budget, settings, s, &eval, &mut |fresh| {
                    best = fresh.iter().map(|f| f.1).fold(best, f64::min);
                    Ok(())
                })
                .unwrap();
                best
            })
            .collect(),
    );
    let bo = median(
        seeds
            .map(|s| {
                let mut best = f64::INFINITY;
                bo_search(2, budget, 6, 1, s, &mut |pts| {
                    let v: Vec<f64> = pts.iter().map(|p| branin(p)).collect();
                    best = v.iter().copied().fold(best, f64::min);
                    Ok(v.iter().map(|x| -x).collect())
                })
                .unwrap();
                best
            })
            .collect(),
    );
    assert!(ga < random, "GA {ga} vs random {random}");
    assert!(bo < random, "Bayesian {bo} vs random {random}");
    // Generous: the benchmark reaches 0.3979 here.
    assert!(bo < 0.45, "Bayesian {bo}");
}

#[test]
fn walk_forward_judges_each_choice_on_the_following_window() {
    let dir = tmp_dir("walk_forward");
    let le = experiment(
        &dir,
        &format!("[optimize]\nmethod = \"random\"\nbudget = 8\n{SPACE}[optimize.walk_forward]\nwindows = 3\ntrain_ratio = 2\n"),
    );
    let (md, _) = tradelab::data::load(&le.data_paths(), &le.exp.data).unwrap();
    let n = md.len();
    let md = std::sync::Arc::new(md);
    let (da, db) = (tmp_dir("wf_a"), tmp_dir("wf_b"));
    let a = tradelab::optimize::walk::run_walk_forward(&le, md.clone(), &da, Some(1), true).unwrap();
    let b = tradelab::optimize::walk::run_walk_forward(&le, md, &db, Some(2), true).unwrap();
    assert_eq!(a.windows.len(), 3);
    // Test windows follow their train windows and tile the bars after the first train stretch.
    let test = n / 5;
    let eq = std::fs::read_to_string(da.join("oos_equity.csv")).unwrap();
    assert_eq!(eq.lines().count() - 1, n - 2 * test);
    for w in &a.windows {
        assert!(w.train.1 < w.test.0, "{w:?}");
        assert!(w.in_sample.is_finite() && w.out_of_sample.is_finite());
    }
    // Same results on any thread count.
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    // The stitched optimized equity compounds the windows' out-of-sample returns.
    let last: f64 = eq.lines().last().unwrap().split(',').nth(1).unwrap().parse().unwrap();
    assert!(close(a.stitched.final_equity, last, 1e-12));
}

fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tradelab")).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn resume_is_bound_to_what_it_resumes_and_its_records_are_lossless() {
    let dir = tmp_dir("resume_bound");
    let data = dir.join("GOOG.csv");
    std::fs::copy(root().join("tests/fixtures/GOOG.csv"), &data).unwrap();
    let file = dir.join("g.toml");
    std::fs::write(
        &file,
        "[experiment]\nname = \"g\"\n[data]\npath = \"GOOG.csv\"\n[[signals.technical]]\nkind = \"sma_cross\"\nfast = 10\nslow = 30\n\
         [optimize]\nmethod = \"grid\"\nobjective = \"total_return\"\n[optimize.space]\n\"signals.technical[0].fast\" = { min = 10, max = 12, step = 2 }\n\
         \"signals.technical[0].slow\" = { choices = [30, 40] }\n\"signals.technical[0].source\" = { choices = [\"a,b\", \"c\"] }\n",
    )
    .unwrap();
    let (f, out) = (file.to_str().unwrap(), dir.join("out"));
    let out = out.to_str().unwrap();
    let (code, err) = cli(&["-q", "optimize", f, "--out", out]);
    assert_eq!(code, 0, "{err}");
    let run = dir.join("out/g/0001");
    let full = std::fs::read_to_string(run.join("trials.csv")).unwrap();
    // A choice holding a comma is quoted, so every row keeps its 15 fields.
    assert_eq!(full.lines().count(), 9);
    assert!(full.lines().nth(1).unwrap().starts_with("0,10,30,\"a,b\",ok,"), "{full}");
    // A kill mid-line: resume (with no folder: the newest run) cuts the torn line off in place
    // and runs only what is missing; the finished rows stay byte for byte.
    let summary = |k: &str| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(run.join("optimize.json")).unwrap()).unwrap()[k].clone()
    };
    let (pbo, dsr) = (summary("pbo"), summary("deflated_sharpe"));
    assert!(pbo.is_number(), "{pbo}");
    let lines: Vec<&str> = full.lines().collect();
    let torn = lines[..7].join("\n") + "\n" + &lines[7][..10];
    std::fs::write(run.join("trials.csv"), &torn).unwrap();
    let blocks = std::fs::read_to_string(run.join("trial_blocks.csv")).unwrap();
    let b: Vec<&str> = blocks.lines().collect();
    // Block sums are written before their trial's row; this cut also loses two finished trials'
    // sums, which the summary then runs again for.
    std::fs::write(run.join("trial_blocks.csv"), b[..5].join("\n") + "\n" + &b[5][..20]).unwrap();
    let (code, err) = cli(&["-q", "optimize", f, "--out", out, "--resume"]);
    assert_eq!(code, 0, "{err}");
    // The summary is the uninterrupted run's, PBO included.
    assert_eq!((summary("pbo"), summary("deflated_sharpe")), (pbo, dsr));
    let again = std::fs::read_to_string(run.join("trials.csv")).unwrap();
    assert_eq!(again.lines().take(7).collect::<Vec<_>>(), lines[..7].to_vec());
    let strip = |t: &str| t.lines().map(|l| l.rsplitn(3, ',').last().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(strip(&again), strip(&full));
    // A damaged row in the middle is an error naming its line, not a silent re-run.
    let bad = full.replacen(",ok,", ",okay,", 2).replacen(",okay,", ",ok,", 1);
    std::fs::write(run.join("trials.csv"), &bad).unwrap();
    let (code, err) = cli(&["-q", "optimize", f, "--out", out, "--resume"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("trials.csv line 3: bad-trial-row"), "{err}");
    std::fs::write(run.join("trials.csv"), &full).unwrap();
    // Another experiment, other data or another seed: refused, naming what changed.
    let (code, err) = cli(&["-q", "optimize", f, "--out", out, "--resume", "--set", "execution.fee_bps=5"]);
    assert_eq!(code, 2);
    assert!(err.contains("different-search") && err.contains("execution.fee_bps (10.0 -> 5.0)"), "{err}");
    let (code, err) = cli(&["-q", "optimize", f, "--out", out, "--resume", "--set", "experiment.seed=7"]);
    assert_eq!(code, 2);
    assert!(err.contains("experiment.seed"), "{err}");
    let text = std::fs::read_to_string(&data).unwrap();
    std::fs::write(&data, text.replacen("100.34", "100.35", 1)).unwrap();
    let (code, err) = cli(&["-q", "optimize", f, "--out", out, "--resume"]);
    assert_eq!(code, 2);
    assert!(err.contains("data/GOOG.csv (contents)"), "{err}");
    // The budget and the thread count are not part of the question.
    std::fs::write(&data, text).unwrap();
    let (code, err) = cli(&["-q", "optimize", f, "--out", out, "--resume", "-j", "1", "--set", "optimize.budget=50"]);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_rule_no_candidate_can_meet_is_the_user_s_error() {
    let dir = tmp_dir("impossible_rule");
    for method in ["grid", "random"] {
        let le = experiment(&dir, &format!("[optimize]\nmethod = \"{method}\"\nbudget = 5\ngrid_points = 3\n{SPACE}"));
        let f = le.file.to_str().unwrap().to_string();
        let out = dir.join(method);
        let (code, err) =
            cli(&["-q", "optimize", &f, "--out", out.to_str().unwrap(), "--set", "optimize.rules=[\"signals.technical[0].fast > 1000\"]"]);
        assert_eq!(code, 2, "{method}: {err}");
        assert!(err.contains("no candidate") && err.contains("rule"), "{method}: {err}");
    }
}

#[test]
fn genetic_search_runs_exactly_its_budget() {
    // Populations of 16 overshoot a budget of 40 at a generation's end: the last is cut short.
    let dir = tmp_dir("ga_budget");
    let le = experiment(&dir, &format!("[optimize]\nmethod = \"genetic\"\nbudget = 40\npopulation = 16\n{SPACE}"));
    let (run, s) = optimize(&le, &dir.join("out"), 2, None);
    assert_eq!(trials(&run).len() - 1, 40);
    assert_eq!(s.trials, 40);
}

#[test]
fn a_search_killed_at_any_step_of_a_checkpoint_loses_no_finished_trial() {
    // TRADELAB_FAULT aborts the process (as kill -9 would) at a named step of writing trial 4:
    // after its block sums, halfway through its row, or right after its row. Resuming must
    // give the uninterrupted search's trials and summary, and leave the rows written before
    // the fault as they were.
    let dir = tmp_dir("kill_points");
    let le = experiment(&dir, &format!("[optimize]\nmethod = \"random\"\nbudget = 12\nbatch = 2\n{SPACE}"));
    let f = le.file.to_str().unwrap().to_string();
    let whole = dir.join("whole");
    let (code, err) = cli(&["-q", "optimize", &f, "--out", whole.to_str().unwrap(), "-j", "1"]);
    assert_eq!(code, 0, "{err}");
    let want = trials(&whole.join("opt/0001"));
    let summary = |d: &Path| -> (serde_json::Value, serde_json::Value) {
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(d.join("optimize.json")).unwrap()).unwrap();
        (v["pbo"].clone(), v["deflated_sharpe"].clone())
    };
    for step in ["blocks", "torn", "row"] {
        let out = dir.join(step);
        let run = out.join("opt/0001");
        let killed = Command::new(env!("CARGO_BIN_EXE_tradelab"))
            .args(["-q", "optimize", &f, "--out", out.to_str().unwrap(), "-j", "1"])
            .env("TRADELAB_FAULT", format!("{step}:4"))
            .output()
            .unwrap();
        assert!(!killed.status.success(), "{step}: the fault point was not reached");
        let before = std::fs::read_to_string(run.join("trials.csv")).unwrap();
        // Complete lines (the header and finished trials); a torn one has no newline.
        let finished: Vec<&str> = before.split_inclusive('\n').filter(|l| l.ends_with('\n')).map(|l| l.trim_end_matches('\n')).collect();
        assert!(finished.len() >= 5, "{step}: {before}");
        let (code, err) = cli(&["-q", "optimize", &f, "--out", out.to_str().unwrap(), "--resume", "-j", "1"]);
        assert_eq!(code, 0, "{step}: {err}");
        assert_eq!(trials(&run), want, "{step}");
        let after = std::fs::read_to_string(run.join("trials.csv")).unwrap();
        assert_eq!(after.lines().take(finished.len()).collect::<Vec<_>>(), finished, "{step}: a finished row changed");
        assert_eq!(summary(&run), summary(&whole.join("opt/0001")), "{step}");
    }
}

#[test]
fn a_walk_forward_window_is_judged_on_the_whole_market_s_calendar() {
    // EURUSD hours (closed at weekends: 252 trading days of 24 bars) in windows whose training
    // part (119 bars, five days) is too short to show a weekend by itself: each window's
    // in-sample Sharpe must be the one `tradelab run` gives over those bars at 6,048 a year.
    let dir = tmp_dir("wf_calendar");
    let file = dir.join("wf.toml");
    let text = format!(
        "[experiment]\nname = \"wf\"\nseed = 3\n[data]\npath = {:?}\n[[signals.technical]]\nkind = \"sma_cross\"\nfast = 5\nslow = 20\n\
         [execution]\nfee_bps = 1\n[optimize]\nmethod = \"grid\"\nobjective = \"sharpe\"\n\
         rules = [\"signals.technical[0].fast < signals.technical[0].slow\"]\n[optimize.space]\n\
         \"signals.technical[0].fast\" = [3, 8]\n\"signals.technical[0].slow\" = [10, 24]\n[optimize.walk_forward]\nwindows = 10\ntrain_ratio = 0.5\n",
        root().join("tests/fixtures/EURUSD_1h.csv").display().to_string()
    );
    std::fs::write(&file, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tradelab"))
        .args(["-q", "walk-forward", file.to_str().unwrap(), "-j", "2", "--out"])
        .arg(dir.join("wf_out"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = std::fs::read_to_string(dir.join("wf_out/wf_walk_forward/0001/walk_forward.csv")).unwrap();
    let mut lines = table.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |n: &str| head.iter().position(|h| *h == n).unwrap();
    for (k, line) in lines.take(3).enumerate() {
        let c: Vec<&str> = line.split(',').collect();
        let mut args: Vec<String> = ["-q", "run", file.to_str().unwrap(), "--out"].iter().map(|s| s.to_string()).collect();
        args.push(dir.join(format!("run_{k}")).display().to_string());
        // The training bars: from its first up to the test window's first (exclusive).
        for set in [format!("data.start=\"{}\"", c[col("train_start")]), format!("data.end=\"{}\"", c[col("test_start")])]
            .into_iter()
            .chain(["metrics.periods_per_year=6048".to_string()])
            .chain(c[col("params")].split("; ").map(String::from))
        {
            args.push("--set".into());
            args.push(set);
        }
        let run = Command::new(env!("CARGO_BIN_EXE_tradelab")).args(&args).output().unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let stats: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(format!("run_{k}/wf/0001/stats.json"))).unwrap()).unwrap();
        assert_eq!(stats["bars"].as_u64(), Some(119), "window {k}");
        let in_sample: f64 = c[col("in_sample")].parse().unwrap();
        assert!(close(stats["sharpe"].as_f64().unwrap(), in_sample, 1e-12), "window {k}: {} vs {in_sample}", stats["sharpe"]);
    }
}
