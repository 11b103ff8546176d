//! The bad-input corpus (`tests/bad_inputs/corpus.toml`): every case runs the binary and must
//! exit with its code (2 for bad input) and a message naming the file and the line or key, and
//! the rule; none is answered with a quiet result, a panic or an OS error said twice.

mod common;
use common::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    files: BTreeMap<String, String>,
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    setup: Vec<Vec<String>>,
    #[serde(default)]
    replace: BTreeMap<String, String>,
    args: Option<Vec<String>>,
    e: Option<String>,
    key: Option<String>,
    #[serde(default = "two")]
    code: i32,
    #[serde(default)]
    expect: Vec<String>,
}

fn two() -> i32 {
    2
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tradelab(dir: &Path, args: &[String]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradelab")).current_dir(dir).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into())
}

/// Writes the shared files, the case's own and its e.toml into `dir`.
fn write_case(dir: &Path, shared: &BTreeMap<String, String>, case: &Case) {
    let fixtures = root().join("tests/fixtures");
    let mut files = shared.clone();
    files.extend(case.files.clone());
    if let Some(e) = &case.e {
        let e = e
            .replace("{data}", "[data]\npath = \"B.csv\"\n")
            .replace("{sma}", "[[signals.technical]]\nkind = \"sma_cross\"\nfast = 2\nslow = 4\n");
        let head = if e.contains("[experiment]") { "" } else { "[experiment]\nname = \"e\"\n" };
        files.insert("e.toml".into(), format!("{head}{e}"));
    }
    for (name, text) in files {
        let path = dir.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Multi-line strings in the corpus start on the line after the quotes.
        std::fs::write(path, text.trim_start_matches('\n').replace("{fixtures}", &fixtures.display().to_string())).unwrap();
    }
}

#[test]
fn each_bad_input_is_named_and_exits_as_documented() {
    let text = std::fs::read_to_string(root().join("tests/bad_inputs/corpus.toml")).unwrap();
    let corpus: Corpus = toml::from_str(&text).unwrap();
    assert!(corpus.case.len() >= 100, "the corpus lost cases: {}", corpus.case.len());
    let base = tmp_dir("bad_inputs");
    let mut failures = Vec::new();
    for (i, case) in corpus.case.iter().enumerate() {
        let dir = base.join(i.to_string());
        std::fs::create_dir_all(&dir).unwrap();
        write_case(&dir, &corpus.files, case);
        for s in &case.setup {
            let (code, err) = tradelab(&dir, s);
            assert_eq!(code, 0, "{}: setup {s:?} failed: {err}", case.name);
        }
        for (target, source) in &case.replace {
            std::fs::copy(dir.join(source), dir.join(target)).unwrap_or_else(|e| panic!("{}: replace {target}: {e}", case.name));
        }
        let args = case.args.clone().unwrap_or_else(|| vec!["run".into(), "e.toml".into()]);
        let (code, err) = tradelab(&dir, &args);
        let mut want = case.expect.clone();
        if let Some(k) = &case.key {
            want.insert(0, format!("e.toml: {k}"));
        }
        let missing: Vec<&String> = want.iter().filter(|w| !err.contains(w.as_str())).collect();
        // An OS error is said once, not once per layer; nothing panics.
        if code != case.code || !missing.is_empty() || err.matches("os error").count() > 1 || err.contains("panicked") {
            failures.push(format!("{}: exit {code} (want {}), missing {missing:?} in:\n{err}", case.name, case.code));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), corpus.case.len(), failures.join("\n"));
}
