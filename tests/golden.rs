//! Golden outputs: every file under `experiments/` is run as a user runs it (`run`, `optimize`
//! or `walk-forward`) and its output folder compared with `tests/golden/<experiment>/` to the
//! last bit: stats, trials, trades, fills, orders, equity. Charts and pages are left out, and so
//! are durations (`seconds` in JSON, `duration_ms` in trials.csv). Small files are kept whole,
//! large ones as a SHA-256 digest in `digests.txt`.
//!
//! A change that moves them must update them in the same commit and say why in its message:
//! `TRADELAB_UPDATE_GOLDEN=1 cargo test --release --test golden -- --include-ignored`.

use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Files up to this size are kept whole; larger ones as a digest.
const WHOLE: usize = 48 * 1024;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file's contents as compared: durations dropped, the checkout's path made `<root>` and the
/// `../shared` beside it `<shared>` (CI checks out elsewhere than a developer does).
fn normalize(rel: &str, bytes: Vec<u8>) -> Vec<u8> {
    let mut text = String::from_utf8_lossy(&bytes).into_owned();
    if let Some(shared) = root().parent().map(|p| p.join("shared")) {
        // As written, and as resolved when `../shared` is a symlink.
        for form in [shared.canonicalize().ok(), Some(shared)].into_iter().flatten() {
            text = text.replace(&form.display().to_string(), "<shared>");
        }
    }
    let text = text.replace(&root().display().to_string(), "<root>");
    if rel.ends_with(".json") {
        let mut v: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{rel}: {e}"));
        if let Some(o) = v.as_object_mut() {
            o.remove("seconds");
        }
        return (serde_json::to_string_pretty(&v).unwrap() + "\n").into_bytes();
    }
    if rel.ends_with("trials.csv") {
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let head = rd.headers().unwrap().clone();
        let keep: Vec<usize> = (0..head.len()).filter(|&i| &head[i] != "duration_ms").collect();
        let mut w = csv::Writer::from_writer(Vec::new());
        w.write_record(keep.iter().map(|&i| &head[i])).unwrap();
        for r in rd.records() {
            let r = r.unwrap();
            w.write_record(keep.iter().map(|&i| &r[i])).unwrap();
        }
        return w.into_inner().unwrap();
    }
    text.into_bytes()
}

/// Every compared file of a run folder (recursively), by relative path.
fn outputs(dir: &Path, base: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            outputs(&p, base, out);
            continue;
        }
        let rel = p.strip_prefix(base).unwrap().to_string_lossy().replace('\\', "/");
        if ["csv", "json", "toml"].iter().any(|e| rel.ends_with(&format!(".{e}"))) {
            let bytes = normalize(&rel, std::fs::read(&p).unwrap());
            out.insert(rel, bytes);
        }
    }
}

fn digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn check(name: &str, cmd: &str) {
    let file = root().join("experiments").join(format!("{name}.toml"));
    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("golden").join(name);
    let _ = std::fs::remove_dir_all(&out);
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_tradelab"))
        .args([cmd, file.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"])
        .output()
        .unwrap();
    assert!(run.status.success(), "{cmd} {name}: {}", String::from_utf8_lossy(&run.stderr));
    // <out>/<experiment name>/0001
    let folder = std::fs::read_dir(&out).unwrap().next().unwrap().unwrap().path().join("0001");
    let mut got = BTreeMap::new();
    outputs(&folder, &folder, &mut got);
    assert!(!got.is_empty(), "{name}: no outputs in {}", folder.display());

    // What is kept: small files whole, the rest in digests.txt.
    let mut whole = BTreeMap::new();
    let mut digests = String::new();
    for (rel, bytes) in &got {
        if bytes.len() <= WHOLE {
            whole.insert(rel.clone(), bytes.clone());
        } else {
            digests += &format!("{rel} {} {}\n", bytes.len(), digest(bytes));
        }
    }
    let gold = root().join("tests/golden").join(name);
    if std::env::var_os("TRADELAB_UPDATE_GOLDEN").is_some() {
        let _ = std::fs::remove_dir_all(&gold);
        for (rel, bytes) in &whole {
            let p = gold.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, bytes).unwrap();
        }
        std::fs::write(gold.join("digests.txt"), &digests).unwrap();
        return;
    }
    let mut wrong = Vec::new();
    let want_digests = std::fs::read_to_string(gold.join("digests.txt")).unwrap_or_default();
    if want_digests != digests {
        wrong.push(format!("digests.txt:\n--- golden\n{want_digests}--- now\n{digests}"));
    }
    let mut want = BTreeMap::new();
    outputs(&gold, &gold, &mut want);
    for rel in want.keys().chain(whole.keys()).collect::<std::collections::BTreeSet<_>>() {
        match (want.get(rel), whole.get(rel)) {
            (Some(a), Some(b)) if a == b => {}
            (Some(a), Some(b)) => {
                let (a, b) = (String::from_utf8_lossy(a), String::from_utf8_lossy(b));
                let line = a.lines().zip(b.lines()).position(|(x, y)| x != y).unwrap_or(a.lines().count().min(b.lines().count()));
                wrong.push(format!(
                    "{rel}: line {} differs:\n  golden: {}\n  now:    {}",
                    line + 1,
                    a.lines().nth(line).unwrap_or("(end)"),
                    b.lines().nth(line).unwrap_or("(end)")
                ));
            }
            (Some(_), None) => wrong.push(format!("{rel}: no longer written")),
            (None, _) => wrong.push(format!("{rel}: new output, not in the golden set")),
        }
    }
    assert!(
        wrong.is_empty(),
        "{name}: outputs moved from tests/golden/{name} (if meant, update with TRADELAB_UPDATE_GOLDEN=1 and say why in the commit):\n{}",
        wrong.join("\n")
    );
}

/// One test per experiment file, with the command its header comment tells a user to run.
macro_rules! golden {
    ($($name:ident: $cmd:literal),* $(,)?) => {$(
        #[test]
        fn $name() {
            check(stringify!($name), $cmd);
        }
    )*};
}

golden!(
    bayesian_search: "optimize",
    genetic_search: "optimize",
    inverse_vol: "run",
    multi_signal_vote: "run",
    portfolio_60_40: "run",
    quickstart: "run",
    regime_trend: "run",
    rsi_mean_reversion: "run",
    rsi_sma_rules: "optimize",
    sma_long_short: "run",
    stops: "run",
    walk_forward: "walk-forward",
);

#[test]
#[ignore = "needs ../shared/bench"]
fn sma_sweep() {
    check("sma_sweep", "optimize");
}

#[test]
#[ignore = "needs ../shared/data"]
fn model_btc() {
    check("model_btc", "walk-forward");
}

#[test]
fn every_experiment_file_has_a_golden_test() {
    let me = std::fs::read_to_string(root().join("tests/golden.rs")).unwrap();
    for e in std::fs::read_dir(root().join("experiments")).unwrap() {
        let name = e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned();
        assert!(
            me.contains(&format!("    {name}: \"")) || me.contains(&format!("check(\"{name}\"")),
            "experiments/{name}.toml has no golden test"
        );
    }
}
