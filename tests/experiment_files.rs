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

/// A candidate built by reading only the sections its keys lead into (`with_sets`) equals the
/// one read from its whole tree (`from_value_with`), result or error, for every experiment
/// file and keys in one or two sections, absent sections, bad values, unknown keys and paths.
#[test]
fn a_candidate_read_by_section_equals_one_read_whole() {
    let int = toml::Value::Integer;
    let float = toml::Value::Float;
    let text = |s: &str| toml::Value::String(s.into());
    let cases: Vec<Vec<(&str, toml::Value)>> = vec![
        vec![("signals.technical[0].fast", int(7))],
        vec![("signals.technical[0].fast", int(7)), ("signals.technical[0].slow", int(40))],
        vec![("risk.stop_loss", float(0.03)), ("execution.fee_bps", float(5.0))],
        vec![("decision.fraction", float(0.5)), ("decision.sizing", text("fixed_fraction")), ("risk.max_position", float(0.7))],
        vec![("experiment.seed", int(987_654))],
        vec![("rebalance.band", float(0.07))],
        vec![("risk.stop_loss", float(-1.0))],
        vec![("portfolio.initial_cash", text("abc"))],
        vec![("risk.stop_los", float(0.05))],
        vec![("signals.technical[9].fast", int(5))],
        vec![("nosuch.x", int(1))],
        vec![("signals", int(1))],
        vec![("signals.technical[0].fast", int(7)), ("signals..x", int(1))],
        vec![("data.max_price_jump", float(0.5))],
        vec![("execution.fill", text("next_open")), ("execution.delay_bars", int(1))],
    ];
    let (mut ok, mut err) = (0, 0);
    for entry in std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments")).unwrap() {
        let file = entry.unwrap().path();
        let exp = Experiment::load(&file).unwrap().exp;
        let root = toml::Value::try_from(&exp).unwrap();
        let base: Experiment = serde::Deserialize::deserialize(root.clone()).unwrap();
        for case in &cases {
            let sets: Vec<(String, toml::Value)> = case.iter().map(|(p, v)| (p.to_string(), v.clone())).collect();
            let whole = Experiment::from_value_with(root.clone(), &sets, &file);
            let by_section = base.with_sets(&root, &sets, &file);
            match (whole, by_section) {
                (Ok(a), Ok(b)) => {
                    assert!(a == b, "{} {case:?}: read by section differs", file.display());
                    // Counted only where the keys changed something (a file may hold the value).
                    ok += usize::from(a != base);
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a.to_string(), b.to_string(), "{} {case:?}", file.display());
                    err += 1;
                }
                (a, b) => panic!("{} {case:?}: whole {:?}, by section {:?}", file.display(), a.map(|_| ()), b.map(|_| ())),
            }
        }
    }
    assert!(ok > 50 && err > 50, "{ok} built, {err} refused");
}
