//! The batch path of a sweep (`tradelab::engine::batch`) against the engine run one candidate
//! at a time: random experiments (signal kinds, modes, weights, sizing, stops, account limits,
//! fees, slippage, fill timing, order types, shorts and borrow) on real bars of two symbols
//! (Binance BTCUSDT and ETHUSDT hours, fixtures cut from ../shared/data), run in tiles of
//! several sizes, must give the same statistics to the last bit; so must the trials of a
//! search run with the batch path and without it.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tradelab::data::{load, LoadOptions, MarketData};
use tradelab::engine::batch::{fallback_reason, run_batch};
use tradelab::engine::{backtest_stats, prepare, summarize};
use tradelab::experiment::{Experiment, LoadedExperiment};

fn market() -> MarketData {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    load(&[dir.join("BTCUSDT_1h.csv"), dir.join("ETHUSDT_1h.csv")], &LoadOptions::default()).unwrap().0
}

fn pick<'a>(r: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs[r.gen_range(0..xs.len())]
}

/// One technical signal entry with random kind, parameters, mode, size and symbols.
fn signal(r: &mut ChaCha8Rng, i: usize) -> String {
    let kind = pick(r, &["sma_cross", "ema_cross", "rsi", "macd", "bollinger", "momentum", "donchian"]);
    let fast = r.gen_range(2..20);
    let slow = fast + r.gen_range(1..60);
    let params = match kind {
        "sma_cross" | "ema_cross" => format!("fast = {fast}\nslow = {slow}"),
        "macd" => format!("fast = {fast}\nslow = {slow}\nsignal = {}", r.gen_range(2..12)),
        "rsi" => {
            let lo = r.gen_range(15..45);
            format!("period = {}\nlower = {lo}\nupper = {}", r.gen_range(2..30), lo + r.gen_range(5..40))
        }
        "bollinger" => format!(
            "period = {}\nstd_dev = {:.2}\nstyle = \"{}\"",
            r.gen_range(5..60),
            r.gen_range(0.5..3.0),
            pick(r, &["reversion", "breakout"])
        ),
        "momentum" => format!("period = {}\nthreshold = {:.4}", r.gen_range(1..60), r.gen_range(0.0..0.03)),
        _ => format!("period = {}", r.gen_range(2..80)),
    };
    let mode = pick(r, &["event", "state"]);
    let strength = pick(r, &["weak", "moderate", "strong", "very_strong"]);
    let conf = [1.0, 0.8, 0.5, 0.0][r.gen_range(0..4)];
    let symbols = pick(r, &["", "symbols = [\"BTCUSDT_1h\"]", "symbols = [\"ETHUSDT_1h\"]"]);
    format!("[[signals.technical]]\nkind = \"{kind}\"\n{params}\nmode = \"{mode}\"\nstrength = \"{strength}\"\nconfidence = {conf}\nsource = \"s{i}\"\n{symbols}\n")
}

/// A random experiment body the batch path covers.
fn experiment(r: &mut ChaCha8Rng) -> String {
    let mut t = String::new();
    for i in 0..r.gen_range(1..4) {
        t += &signal(r, i);
    }
    if r.gen_bool(0.3) {
        t += &format!("[signals.weights]\ns0 = {}\n", [0.0, 0.5, 2.0][r.gen_range(0..3)]);
    }
    t += &format!("[portfolio]\ninitial_cash = 10000\nallow_short = {}\nborrow_rate = {}\n", r.gen_bool(0.5), pick(r, &["0.0", "0.05"]));
    let sizing = pick(r, &["fixed_fraction", "fixed_notional", "fixed_quantity"]);
    t += &format!(
        "[decision]\nsizing = \"{sizing}\"\nfraction = {:.2}\nnotional = 3000\nquantity = {}\nmin_confidence = {}\n",
        r.gen_range(0.1..1.0),
        pick(r, &["0.05", "1"]),
        pick(r, &["0.0", "0.6"])
    );
    t += "[risk]\n";
    if r.gen_bool(0.4) {
        t += &format!("stop_loss = {:.3}\n", r.gen_range(0.005..0.08));
    }
    if r.gen_bool(0.3) {
        t += &format!("take_profit = {:.3}\n", r.gen_range(0.01..0.1));
    }
    if r.gen_bool(0.3) {
        t += &format!("trailing_stop = {:.3}\n", r.gen_range(0.01..0.1));
    }
    if r.gen_bool(0.2) {
        t += &format!("max_drawdown = {:.2}\nhalt_bars = {}\n", r.gen_range(0.05..0.3), r.gen_range(0..50));
    }
    if r.gen_bool(0.2) {
        t += &format!("max_daily_loss = {:.3}\n", r.gen_range(0.01..0.05));
    }
    if r.gen_bool(0.2) {
        t += &format!("max_trades_per_day = {}\n", r.gen_range(1..4));
    }
    if r.gen_bool(0.3) {
        t += &format!("max_position = {:.2}\n", r.gen_range(0.2..1.0));
    }
    let order = pick(r, &["market", "market", "limit", "stop"]);
    t += &format!(
        "[execution]\nfill = \"{}\"\ndelay_bars = {}\nfee_bps = {:.1}\nslippage_bps = {:.1}\norder_type = \"{order}\"\n",
        pick(r, &["next_open", "next_close", "close"]),
        r.gen_range(0..3),
        r.gen_range(0.0..20.0),
        r.gen_range(0.0..10.0)
    );
    if order != "market" {
        t += &format!("limit_offset_bps = {:.1}\ntime_in_force_bars = {}\n", r.gen_range(0.0..50.0), r.gen_range(0..6));
    }
    if r.gen_bool(0.3) {
        t += "min_notional = 10\nlot_size = 0.001\n";
    }
    t
}

fn loaded(body: &str) -> Option<LoadedExperiment> {
    let text = format!("[experiment]\nname = \"t\"\n[data]\npath = \"unused\"\n{body}");
    let exp = Experiment::from_toml(&text, Path::new("t.toml")).ok()?;
    Some(LoadedExperiment { exp, file: "t.toml".into() })
}

/// Everything a trial is made of, as bits: the statistics (as JSON, every digit) and the
/// per-block return sums.
fn fingerprint(prep: &tradelab::engine::Prepared, res: &tradelab::engine::RunResult) -> String {
    let stats = serde_json::to_string(&summarize(prep, res)).unwrap();
    let blocks: Vec<u64> = res.stream.blocks().iter().flatten().map(|x| x.to_bits()).collect();
    format!("{stats} {blocks:?} {:?} {:?}", res.fault, res.ruin)
}

#[test]
fn random_experiments_give_the_same_bits_in_tiles_as_whole() {
    let md = Arc::new(market());
    let cache = Arc::new(tradelab::signals::IndicatorCache::default());
    let mut r = ChaCha8Rng::seed_from_u64(2026);
    let mut les = Vec::new();
    while les.len() < 60 {
        if let Some(le) = loaded(&experiment(&mut r)) {
            assert_eq!(fallback_reason(&le.exp), None);
            les.push(le);
        }
    }
    let whole: Vec<Option<String>> =
        les.iter().map(|le| prepare(le, md.clone(), &cache).ok().map(|p| fingerprint(&p, &backtest_stats(&le.exp, &p)))).collect();
    let ran = whole.iter().filter(|w| w.is_some()).count();
    assert!(ran >= 50, "only {ran} of 60 random experiments could run");
    let mut trades = 0;
    for tile in [1, 7, 64, 1000, 5000] {
        let got = run_batch(&les, &md, &cache, tile, tradelab::engine::Record::Stats);
        for (i, (w, g)) in whole.iter().zip(got).enumerate() {
            let g = g.ok().map(|(p, res)| {
                if tile == 7 {
                    trades += summarize(&p, &res).trades;
                }
                fingerprint(&p, &res)
            });
            assert_eq!(w, &g, "experiment {i} in tiles of {tile}:\n{}", experiment_text(&les[i]));
        }
    }
    // The experiments trade: the comparison is not of empty books.
    assert!(trades > 60 * 20, "{trades} trades in all");
    // Recorded runs (every bar's equity, every fill) are the engine's too.
    let got = run_batch(&les[..20], &md, &cache, 333, tradelab::engine::Record::Full);
    for (le, g) in les.iter().zip(got) {
        let Ok((_, b)) = g else { continue };
        let w = tradelab::engine::backtest(&le.exp, &prepare(le, md.clone(), &cache).unwrap());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!((bits(&w.equity), bits(&w.cash)), (bits(&b.equity), bits(&b.cash)));
        assert_eq!(format!("{:?}", w.fills), format!("{:?}", b.fills));
        assert_eq!(w.trades.len(), b.trades.len());
    }
    // So is the equity curve of a run that records it alone.
    let got = run_batch(&les[20..30], &md, &cache, 100, tradelab::engine::Record::Equity);
    for (le, g) in les[20..30].iter().zip(got) {
        let Ok((_, b)) = g else { continue };
        let w = tradelab::engine::backtest(&le.exp, &prepare(le, md.clone(), &cache).unwrap());
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&w.equity), bits(&b.equity));
        assert!(b.fills.is_empty() && b.cash.is_empty());
    }
}

#[test]
fn a_run_ruined_inside_an_idle_stretch_ends_alike_in_tiles() {
    // Flat at 100 with a small wobble, then up 10% a bar: RSI(5) stays above 70 all the way up,
    // so a short taken on the first overbought close is held through bars where nothing happens
    // (skipped in bulk, across tile ends) until the book is worth nothing.
    let mut rows: Vec<(f64, f64, f64, f64, f64)> =
        (0..30).map(|t| if t % 2 == 0 { 100.0 } else { 100.5 }).map(|p| (p, p, p, p, 1e9)).collect();
    let mut p = 100.0;
    for _ in 0..20 {
        p *= 1.1;
        rows.push((p, p, p, p, 1e9));
    }
    rows.extend([(p, p, p, p, 1e9); 10]);
    let ts: Vec<i64> = (0..rows.len() as i64).map(|t| 1_700_000_000_000 + t * 3_600_000).collect();
    let mut b = tradelab::data::Bars::default();
    for &(o, h, l, c, v) in &rows {
        b.push(o, h, l, c, v, true);
    }
    let md = Arc::new(MarketData {
        timeframe: tradelab::data::Timeframe::from_ms(3_600_000),
        timestamps: ts,
        symbols: vec!["S".into()],
        bars: vec![b],
        calendar: None,
    });
    let le = loaded(
        "[portfolio]\nallow_short = true\n[[signals.technical]]\nkind = \"rsi\"\nperiod = 5\nlower = 30\nupper = 70\nmode = \"state\"\n[execution]\nfill = \"close\"\nfee_bps = 10\n",
    )
    .unwrap();
    let cache = Arc::new(tradelab::signals::IndicatorCache::default());
    let prep = prepare(&le, md.clone(), &cache).unwrap();
    let full = tradelab::engine::backtest(&le.exp, &prep);
    let (bar, eq) = full.ruin.expect("the short is ruined");
    // The ruin bar is the first close at which the short's cash no longer covers it.
    let f = &full.fills[0];
    assert!(f.qty < 0.0 && full.fills[1..].iter().all(|x| x.reason == tradelab::portfolio::Reason::Liquidation));
    let cash = 10_000.0 - f.qty * f.price - f.fee;
    let first = (0..rows.len()).find(|&u| cash + f.qty * rows[u].3 <= 0.0).unwrap();
    assert_eq!(bar, first);
    assert!(close_enough(eq, cash + f.qty * rows[bar].3));
    assert!(full.equity[bar..].iter().all(|e| *e == 0.0) && full.equity[..bar].iter().all(|e| *e > 0.0));
    let whole = fingerprint(&prep, &backtest_stats(&le.exp, &prep));
    for tile in [1, 3, 7, 16, 64] {
        let got = run_batch(std::slice::from_ref(&le), &md, &cache, tile, tradelab::engine::Record::Stats).pop().unwrap().unwrap();
        assert_eq!(fingerprint(&got.0, &got.1), whole, "tiles of {tile}");
        let got = run_batch(std::slice::from_ref(&le), &md, &cache, tile, tradelab::engine::Record::Full).pop().unwrap().unwrap();
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got.1.equity), bits(&full.equity), "tiles of {tile}");
        assert_eq!(format!("{:?}", got.1.fills), format!("{:?}", full.fills));
    }
}

fn close_enough(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * b.abs().max(1.0)
}

fn experiment_text(le: &LoadedExperiment) -> String {
    le.exp.to_toml()
}

#[test]
fn what_the_batch_path_does_not_cover_is_named() {
    let body = |extra: &str| format!("[[signals.technical]]\nkind = \"sma_cross\"\n{extra}");
    let reason = |extra: &str| fallback_reason(&loaded(&body(extra)).unwrap().exp);
    assert_eq!(reason(""), None);
    assert_eq!(reason("[risk]\nstop_atr = 2.0\n"), Some("ATR stops"));
    assert_eq!(reason("[decision]\nsizing = \"volatility\"\n"), Some("volatility sizing"));
    assert_eq!(reason("[risk]\nmax_correlation = 0.5\n"), Some("correlation cap"));
    assert_eq!(reason("[[signals.rules]]\nentry = \"close > 1\"\nsymbols = [\"X\"]\n"), Some("strategies (rules or code)"));
}

#[test]
fn a_search_gives_the_same_trials_with_the_batch_path_and_without() {
    let md = Arc::new(market());
    let body = "[[signals.technical]]\nkind = \"ema_cross\"\nfast = 5\nslow = 20\n\
        [[signals.technical]]\nkind = \"rsi\"\nmode = \"state\"\nsymbols = [\"ETHUSDT_1h\"]\n\
        [portfolio]\nallow_short = true\n[risk]\nstop_loss = 0.03\n\
        [execution]\nfee_bps = 10\n\
        [optimize]\nmethod = \"random\"\nbudget = 40\nobjective = \"sharpe\"\n\
        [optimize.space]\n\"signals.technical[0].fast\" = [2, 15]\n\"signals.technical[0].slow\" = [16, 60]\n\
        \"signals.technical[1].period\" = [3, 30]\n\"risk.stop_loss\" = [0.01, 0.1]\n";
    let le = loaded(body).unwrap();
    let trials = |batch: bool| {
        let mut study = tradelab::optimize::Study::new(&le, md.clone()).unwrap();
        study.batch = batch;
        let r = tradelab::optimize::search(&mut study, None, &indicatif::ProgressBar::hidden()).unwrap();
        r.trials
            .iter()
            .map(|t| {
                format!(
                    "{:?} {:?} {} {:?} {:?}",
                    t.params,
                    t.status,
                    t.score.to_bits(),
                    t.key_stats.map(f64::to_bits),
                    t.blocks.map(|b| b.map(|x| x.map(f64::to_bits)))
                )
            })
            .collect::<Vec<_>>()
    };
    let (with, without) = (trials(true), trials(false));
    assert_eq!(with.len(), 40);
    assert_eq!(with, without);
    // With a trial log, the trials go to the log only: the result keeps the count and the best,
    // which is the highest score (the earliest of equals) of the trials kept in memory above.
    let mut study = tradelab::optimize::Study::new(&le, md.clone()).unwrap();
    let all = tradelab::optimize::search(&mut study, None, &indicatif::ProgressBar::hidden()).unwrap().trials;
    let top = all.iter().map(|t| t.score).fold(f64::NEG_INFINITY, f64::max);
    let want = all.iter().find(|t| t.score == top).unwrap();
    let dir = std::env::temp_dir().join(format!("tradelab-logged-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (mut log, _) = tradelab::optimize::TrialLog::open(&dir, &study.space, false).unwrap();
    let r = tradelab::optimize::search(&mut study, Some(&mut log), &indicatif::ProgressBar::hidden()).unwrap();
    assert!(r.trials.is_empty());
    assert_eq!(r.count, 40);
    let best = r.best.unwrap();
    assert_eq!((best.index, &best.params, best.score.to_bits()), (want.index, &want.params, want.score.to_bits()));
    let logged = std::fs::read_to_string(dir.join("trials.csv")).unwrap();
    assert_eq!(logged.lines().count(), 41);
    std::fs::remove_dir_all(&dir).unwrap();
}
