//! Experiment files: errors name the key path; overrides; the resolved copy round-trips.

use std::path::Path;
use tradelab::experiment::Experiment;

/// The error of an experiment file: its schema's, else the checks of the sections the modules
/// interpret (what every run does before it starts).
fn err(body: &str) -> String {
    let text = format!("[experiment]\nname = \"t\"\n[data]\npath = \"x\"\n{body}");
    let f = Path::new("exp.toml");
    match Experiment::from_toml(&text, f) {
        Err(e) => e.to_string(),
        Ok(e) => tradelab::engine::check(&e, f).unwrap_err().to_string(),
    }
}

#[test]
fn unknown_key_with_path_and_suggestion() {
    let e = err("[risk]\nstop_los = 0.05\n");
    assert!(e.starts_with("exp.toml: risk.stop_los: unknown key, did you mean stop_loss?"), "{e}");
    let e = err("[[signals.technical]]\nkind = \"sma_cross\"\nfats = 3\n");
    assert!(e.contains("signals.technical[0].fats: unknown key, did you mean fast?"), "{e}");
    let e = err("[[signals.technical]]\nkind = \"sma_cros\"\n");
    assert!(e.contains("signals.technical[0].kind: unknown value 'sma_cros', did you mean sma_cross?"), "{e}");
}

#[test]
fn wrong_type_with_path() {
    let e = err("[execution]\nfee_bps = \"ten\"\n");
    assert!(e.contains("execution.fee_bps: invalid type: string \"ten\", expected f64"), "{e}");
    let e = err("[[signals.technical]]\nkind = \"rsi\"\nperiod = 2.5\n");
    assert!(e.contains("signals.technical[0].period: invalid type"), "{e}");
}

#[test]
fn out_of_range_with_path() {
    assert!(err("[execution]\nfee_bps = -1\n").contains("execution.fee_bps: -1 must be >= 0"));
    assert!(err("[risk]\nstop_loss = 1.5\n").contains("risk.stop_loss: 1.5 must be a fraction in (0, 1)"));
    let e = err("[[signals.technical]]\nkind = \"sma_cross\"\nfast = 50\nslow = 20\n");
    assert!(e.contains("signals.technical[0].fast: fast (50) must be < slow (20)"), "{e}");
    let e = err("[[signals.technical]]\nkind = \"sma_cross\"\nperiod = 5\n");
    assert!(e.contains("signals.technical[0].period: not used by SmaCross"), "{e}");
    assert!(err("[decision]\nmin_confidence = 2\n").contains("decision.min_confidence"));
    assert!(err("[execution]\nmax_participation = 0\n").contains("execution.max_participation"));
}

#[test]
fn overrides_by_path_are_validated_like_the_file() {
    let text = "[experiment]\nname = \"t\"\n[data]\npath = \"x\"\n[[signals.technical]]\nkind = \"sma_cross\"\nfast = 5\nslow = 20\n";
    let f = Path::new("exp.toml");
    let e = Experiment::from_toml(text, f).unwrap();
    let e2 = e.with_override("signals.technical[0].fast", "10", f).unwrap();
    assert_eq!(e2.signals.technical[0].fast, Some(10));
    let e3 = e.with_override("risk.stop_loss", "0.03", f).unwrap();
    assert_eq!(e3.risk.stop_loss, Some(0.03));
    let e4 = e.with_override("signals.technical[0].fast", "30", f).unwrap();
    assert!(tradelab::engine::check(&e4, f).unwrap_err().to_string().contains("must be < slow"));
    assert!(e.with_override("signals.technical[3].fast", "3", f).unwrap_err().to_string().contains("no [3]"));
}

#[test]
fn resolved_copy_round_trips_with_defaults_filled() {
    let text = "[experiment]\nname = \"t\"\nseed = 9\n[data]\npath = \"x\"\n";
    let e = Experiment::from_toml(text, Path::new("a.toml")).unwrap();
    let resolved = e.to_toml();
    assert!(resolved.contains("seed = 9") && resolved.contains("fee_bps = 10.0") && resolved.contains("initial_cash = 10000.0"));
    assert_eq!(Experiment::from_toml(&resolved, Path::new("b.toml")).unwrap(), e);
}
