//! Model signals (`[[signals.models]]`): no leakage (truncating the data after bar t changes no
//! prediction at or before t, and a feature built to peek one bar ahead is caught by that same
//! check), purging by construction, training shared across candidates, and skill measured
//! against what is achievable: on AR(1) returns the out-of-sample AUC comes near the optimum
//! computed from the true process, on noise near 0.5, both within block-bootstrap error bars.
//! Markets are made here from their own formulas (not `tradelab data synth`) or are real bars.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tradelab::data::{load, Bars, LoadOptions, MarketData, Timeframe};
use tradelab::engine::{prepare, Prepared};
use tradelab::experiment::{Experiment, LoadedExperiment, ModelSignal};
use tradelab::signals::models::{train_columns, SymbolPredictions};
use tradelab::signals::{IndicatorCache, NONE};

fn prep_with(md: &MarketData, body: &str, cache: &Arc<IndicatorCache>) -> Prepared {
    let text = format!("[experiment]\nname = \"t\"\n[data]\npath = \"unused\"\n{body}");
    let le = LoadedExperiment { exp: Experiment::from_toml(&text, Path::new("t.toml")).unwrap(), file: "t.toml".into() };
    prepare(&le, Arc::new(md.clone()), cache).unwrap_or_else(|e| panic!("{e}"))
}

fn preds(p: &Prepared, sym: usize) -> SymbolPredictions {
    p.models[0].per_sym[sym].clone().expect("predictions")
}

/// Closes from log returns `r`, with opens at the previous close.
fn market_from_returns(r: &[f64]) -> MarketData {
    let mut b = Bars::default();
    let mut c = 100.0;
    for &x in r {
        let o = c;
        c *= x.exp();
        b.push(o, o.max(c) * 1.0005, o.min(c) * 0.9995, c, 1.0, true);
    }
    MarketData {
        timeframe: Timeframe::from_ms(3_600_000),
        timestamps: (0..r.len() as i64).map(|i| 1_600_000_000_000 + i * 3_600_000).collect(),
        symbols: vec!["AR".into()],
        bars: vec![b],
        calendar: None,
    }
}

/// AR(1) log returns: r[t] = phi * r[t-1] + 0.01 * e[t].
fn ar1(n: usize, phi: f64, seed: u64) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut r = Vec::with_capacity(n);
    let mut prev = 0.0;
    for _ in 0..n {
        let e: f64 = StandardNormal.sample(&mut rng);
        prev = phi * prev + 0.01 * e;
        r.push(prev);
    }
    r
}

/// AUC by ranks (no ties expected in continuous scores), written apart from the product's.
fn rank_auc(score: &[f64], pos: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].partial_cmp(&score[b]).unwrap());
    let (mut np, mut rank_sum) = (0.0, 0.0);
    for (rank, &i) in idx.iter().enumerate() {
        if pos[i] {
            np += 1.0;
            rank_sum += rank as f64 + 1.0;
        }
    }
    let nn = score.len() as f64 - np;
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Out-of-sample (p_up, up?) pairs of a symbol's predictions where the label is known.
fn oos(p: &SymbolPredictions) -> (Vec<f64>, Vec<bool>) {
    (0..p.class.len()).filter(|&t| p.class[t] != NONE && p.label[t] != NONE).map(|t| (p.p_up[t], p.label[t] == 1)).unzip()
}

/// Standard error of the AUC by a moving-block bootstrap (blocks keep overlapping labels
/// together), 300 resamples.
fn block_bootstrap_se(score: &[f64], pos: &[bool], block: usize) -> f64 {
    use rand::Rng;
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let n = score.len();
    let aucs: Vec<f64> = (0..300)
        .map(|_| {
            let (mut s, mut p) = (Vec::with_capacity(n), Vec::with_capacity(n));
            while s.len() < n {
                let start = rng.gen_range(0..n - block);
                s.extend_from_slice(&score[start..start + block]);
                p.extend_from_slice(&pos[start..start + block]);
            }
            rank_auc(&s, &p)
        })
        .collect();
    let m = aucs.iter().sum::<f64>() / aucs.len() as f64;
    (aucs.iter().map(|a| (a - m).powi(2)).sum::<f64>() / (aucs.len() - 1) as f64).sqrt()
}

const MODEL: &str = "[[signals.models]]\nfeatures = [\"momentum(1)\"]\nhorizon = 1\ntrain_bars = 1500\nrefit_every = 1500\n";

#[test]
fn on_ar1_returns_the_auc_comes_near_the_achievable_optimum() {
    let phi = 0.15;
    let md = market_from_returns(&ar1(24_000, phi, 7));
    let p = preds(&prep_with(&md, MODEL, &Default::default()), 0);
    let (s, y) = oos(&p);
    assert!(s.len() > 20_000, "{} scored bars", s.len());
    let got = rank_auc(&s, &y);
    // The optimum: the true conditional probability is increasing in r[t], so its AUC is that of
    // r[t] itself against r[t+1] > 0, here from a long independent draw of the same process.
    let long = ar1(400_000, phi, 1234);
    let opt = rank_auc(&long[..long.len() - 1], &long[1..].iter().map(|x| *x > 0.0).collect::<Vec<_>>());
    let se = block_bootstrap_se(&s, &y, 50);
    println!("AR(1) phi {phi}: out-of-sample AUC {got:.4}, optimum {opt:.4}, block-bootstrap se {se:.4}, {} bars", s.len());
    assert!(opt > 0.54, "optimum {opt}");
    assert!((got - opt).abs() < 3.0 * se + 0.003, "AUC {got} against the optimum {opt} (bootstrap se {se})");
}

#[test]
fn on_noise_the_auc_stays_near_one_half() {
    let md = market_from_returns(&ar1(24_000, 0.0, 11));
    // Overlapping labels (5 bars ahead) and two features: still nothing to learn.
    let body = "[[signals.models]]\nfeatures = [\"momentum(1)\", \"rsi(14)\"]\nhorizon = 5\ntrain_bars = 1500\nrefit_every = 1500\n";
    let p = preds(&prep_with(&md, body, &Default::default()), 0);
    let (s, y) = oos(&p);
    let got = rank_auc(&s, &y);
    let se = block_bootstrap_se(&s, &y, 50);
    println!("noise: out-of-sample AUC {got:.4}, block-bootstrap se {se:.4}, {} bars", s.len());
    assert!(se > 0.003 && se < 0.02, "se {se}");
    assert!((got - 0.5).abs() < 3.0 * se, "AUC {got} on noise (bootstrap se {se})");
}

fn fixtures() -> MarketData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    load(&[dir.join("BTCUSDT_1h.csv"), dir.join("ETHUSDT_1h.csv")], &LoadOptions::default()).unwrap().0
}

/// Whether the predictions of `a` and `b` agree at every bar before `k`.
fn same_before(a: &SymbolPredictions, b: &SymbolPredictions, k: usize) -> bool {
    (0..k).all(|t| a.class[t] == b.class[t] && a.prob[t].to_bits() == b.prob[t].to_bits() && a.p_up[t].to_bits() == b.p_up[t].to_bits())
}

#[test]
fn truncating_the_data_after_bar_t_changes_no_prediction_up_to_t() {
    let md = fixtures();
    for body in [
        // Per symbol, logistic, triple barrier, features on the other symbol and on daily bars.
        "[[signals.models]]\nfeatures = [\"momentum(6)\", \"rsi(14)\", \"close / sma(24)@1d - 1\", \"momentum(6)@ETHUSDT_1h\"]\n\
         label = \"triple_barrier\"\nhorizon = 12\ntake_profit = 0.02\nstop_loss = 0.02\ntrain_bars = 600\nrefit_every = 150\n",
        // Regime labels as features (a detector that refits on past bars only).
        "[regime]\ndetector = \"rules\"\n[[signals.models]]\nfeatures = [\"momentum(6)\", \"regime_high_vol\", \"regime_bull\", \"regime_trend_t\"]\n\
         horizon = 6\ntrain_bars = 600\nrefit_every = 200\n",
        // Pooled over both symbols, a forest.
        "[[signals.models]]\nfeatures = [\"momentum(3)\", \"std(close, 12) / close\"]\nmodel = \"forest\"\ntrees = 10\npooled = true\n\
         horizon = 6\ntrain_bars = 800\nrefit_every = 200\n",
    ] {
        let full = prep_with(&md, body, &Default::default());
        // The latest of the symbols' first refits: cut before it, a model could never train
        // (an error, not a silent no-op).
        let first =
            (0..2).filter_map(|s| full.models[0].refits.iter().find(|r| r.sym.is_none_or(|x| x == s)).map(|r| r.bar)).max().unwrap();
        assert!(full.models[0].refits.len() >= 5);
        for k in [first + 1, first + 333, 1900, 2400] {
            let cut = prep_with(&md.slice(0..k), body, &Default::default());
            for s in 0..2 {
                assert!(same_before(&preds(&full, s), &preds(&cut, s), k), "symbol {s}, first {k} bars:\n{body}");
            }
        }
        // Purged by construction: every training label ended an embargo before its refit.
        for r in &full.models[0].refits {
            assert!(r.train.1 < r.bar, "{r:?}");
        }
    }
}

#[test]
fn a_feature_that_peeks_one_bar_ahead_is_caught() {
    let md = fixtures();
    let close = &md.bars[0].close;
    let cfg: ModelSignal = toml::from_str("features = [\"f\"]\nhorizon = 4\ntrain_bars = 600\nrefit_every = 200\n").unwrap();
    let run = |close: &[f64], peek: bool| {
        let n = close.len();
        let col: Vec<f64> = (0..n)
            .map(|t| match (peek, t) {
                (true, t) if t + 1 < n => close[t + 1] / close[t] - 1.0,
                (false, t) if t >= 1 => close[t] / close[t - 1] - 1.0,
                _ => f64::NAN,
            })
            .collect();
        train_columns(&cfg, "m", 1, &[(0, vec![col], close)]).unwrap().per_sym[0].clone().unwrap()
    };
    let k = 1500;
    assert!(same_before(&run(close, false), &run(&close[..k], false), k), "the honest feature passes");
    assert!(!same_before(&run(close, true), &run(&close[..k], true), k), "the peeking feature must fail the same check");
}

#[test]
fn a_model_is_trained_once_for_candidates_that_differ_elsewhere() {
    let md = fixtures();
    let cache: Arc<IndicatorCache> = Default::default();
    let body = |conf: f64| {
        format!(
            "[[signals.models]]\nfeatures = [\"momentum(6)\"]\nhorizon = 6\ntrain_bars = 600\nrefit_every = 300\n[decision]\nmin_confidence = {conf}\n"
        )
    };
    let (a, b) = (prep_with(&md, &body(0.5), &cache), prep_with(&md, &body(0.6), &cache));
    assert!(Arc::ptr_eq(&a.models[0], &b.models[0]), "the second candidate reused the trained model");
    // A different model setting is a different model.
    let c = prep_with(&md, &body(0.5).replace("horizon = 6", "horizon = 7"), &cache);
    assert!(!Arc::ptr_eq(&a.models[0], &c.models[0]));
}

#[test]
fn a_search_over_model_settings_gives_the_same_trials_on_one_and_two_threads() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("models_threads");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let exp = format!(
        "[experiment]\nname = \"m\"\nseed = 4\n[data]\npaths = [\"{}\", \"{}\"]\n\
         [[signals.models]]\nfeatures = [\"momentum(6)\", \"rsi(14)\", \"momentum(6)@ETHUSDT_1h\"]\nmodel = \"forest\"\ntrees = 8\n\
         horizon = 6\ntrain_bars = 600\nrefit_every = 300\nsymbols = [\"BTCUSDT_1h\"]\n\
         [optimize]\nmethod = \"random\"\nbudget = 8\n[optimize.space]\n\"decision.min_confidence\" = [0.5, 0.7]\n\
         \"signals.models[0].max_depth\" = {{ choices = [2, 4] }}\n",
        fixtures.join("BTCUSDT_1h.csv").display(),
        fixtures.join("ETHUSDT_1h.csv").display()
    );
    let file = dir.join("m.toml");
    std::fs::write(&file, exp).unwrap();
    let trials = |jobs: &str| {
        let out = dir.join(format!("j{jobs}"));
        let run = std::process::Command::new(env!("CARGO_BIN_EXE_tradelab"))
            .args(["optimize", file.to_str().unwrap(), "-j", jobs, "-q", "--out", out.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
        let text = std::fs::read_to_string(out.join("m/0001/trials.csv")).unwrap();
        // Everything but the duration column.
        let mut rd = csv::Reader::from_reader(text.as_bytes());
        let head = rd.headers().unwrap().clone();
        let keep: Vec<usize> = (0..head.len()).filter(|&i| &head[i] != "duration_ms").collect();
        rd.records().map(|r| keep.iter().map(|&i| r.as_ref().unwrap()[i].to_string()).collect::<Vec<_>>()).collect::<Vec<_>>()
    };
    let (one, two) = (trials("1"), trials("2"));
    assert_eq!(one.len(), 8);
    assert!(one.iter().any(|r| r.iter().any(|v| v == "4")) && one.iter().any(|r| r.iter().any(|v| v == "2")));
    assert_eq!(one, two);
}
