//! Bad inputs from the command line: each case exits 2 with a message that names the file and
//! the line or key, and the rule; none is answered with a quiet result.

mod common;
use common::*;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tradelab(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tradelab")).current_dir(dir).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into())
}

const BARS: &str = "timestamp,open,high,low,close,volume\n";

#[test]
fn each_bad_input_is_named_and_exits_2() {
    let dir = tmp_dir("bad_inputs");
    let goog = root().join("tests/fixtures/GOOG.csv");
    let write = |name: &str, text: &str| std::fs::write(dir.join(name), text).unwrap();
    write("DUP.csv", &BARS.replace("close,", "close,close,"));
    write("ONE.csv", &format!("{BARS}2024-01-01T00:00:00Z,1,1,1,1,1\n"));
    write("one.toml", "[experiment]\nname = \"one\"\n[data]\npath = \"ONE.csv\"\n");
    write("goog.toml", &format!("[experiment]\nname = \"g\"\n[data]\npath = \"{}\"\n", goog.display()));
    write(
        "rule.toml",
        &format!(
            "[experiment]\nname = \"r\"\n[data]\npath = \"{}\"\n[optimize]\nmethod = \"grid\"\nrules = [\"signals.technical[0].fast <== 20\"]\n\
             [optimize.space]\n\"signals.technical[0].fast\" = [5, 10]\n[[signals.technical]]\nkind = \"sma_cross\"\n",
            goog.display()
        ),
    );
    write("BTC_USDT-1h.json", "[[1704067200000,1,1,1,1,1],[1704070800000,1,1,1,1,1,7]]");
    write("A,B.csv", &format!("{BARS}2024-01-01T00:00:00Z,1,1,1,1,1\n2024-01-01T01:00:00Z,1,1,1,1,1\n"));
    let cases: &[(&[&str], &[&str])] = &[
        (&["data", "inspect", "A,B.csv"], &["A,B.csv", "bad-symbol", "'A,B'"]),
        (&["data", "inspect", "BTC_USDT-1h.json"], &["BTC_USDT-1h.json row 2: extra-field", "7 fields, expected 6"]),
        (&["data", "inspect", "DUP.csv"], &["DUP.csv line 1: duplicate-column", "'close'"]),
        (&["run", "one.toml"], &["ONE.csv (1 bar)", "data.timeframe"]),
        (&["run", "goog.toml", "--set", "data.start=\"2030-01-01\""], &["data.start 2030-01-01", "2004-08-19", "2013-03-01"]),
        (&["optimize", "rule.toml"], &["rule.toml: optimize.rules[0]", "<=="]),
        (&["run", "nosuch.toml"], &["nosuch.toml: No such file"]),
    ];
    for (args, want) in cases {
        let (code, err) = tradelab(&dir, args);
        assert_eq!(code, 2, "{args:?}: {err}");
        for w in *want {
            assert!(err.contains(w), "{args:?}: expected '{w}' in: {err}");
        }
        // An OS error is said once, not once per layer.
        assert!(err.matches("os error").count() <= 1, "{args:?}: {err}");
    }
}
