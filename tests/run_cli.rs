//! `tradelab run` end to end: outputs, exit codes, determinism, no look-ahead, the real data,
//! and agreement with a second, independent implementation of an SMA-cross strategy.

mod common;
#[allow(unused_imports)]
use common::Ohlcv;
use common::*;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use tradelab::engine::{backtest, prepare};
use tradelab::experiment::Experiment;
use tradelab::signals::IndicatorCache;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn tradelab(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tradelab")).current_dir(root()).args(args).output().unwrap();
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn quickstart_writes_a_complete_run_folder() {
    let out = tmp_dir("quickstart");
    let (code, stdout, stderr) = tradelab(&["run", "experiments/quickstart.toml", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("sharpe"));
    let dir = out.join("quickstart/0001");
    for f in [
        "experiment.toml",
        "stats.json",
        "equity.csv",
        "trades.csv",
        "fills.csv",
        "orders.csv",
        "risk_events.csv",
        "signals.csv",
        "weights.csv",
    ] {
        assert!(dir.join(f).exists(), "{f} missing");
    }
    let stats: serde_json::Value = serde_json::from_str(&read(&dir.join("stats.json"))).unwrap();
    let eq = read(&dir.join("equity.csv"));
    let last: f64 = eq.lines().last().unwrap().split(',').nth(1).unwrap().parse().unwrap();
    assert!(close(stats["total_return"].as_f64().unwrap(), last / 10_000.0 - 1.0, 1e-12));
    assert_eq!(eq.lines().count(), 17_521);
    // Trades close with a sell of what was bought: the fills' quantities net to the open position.
    assert!(stats["trades"].as_u64().unwrap() > 10);
    // The resolved experiment in the run folder runs again as it stands, to the same results.
    let again = tmp_dir("quickstart_again");
    let (code, _, stderr) = tradelab(&["-q", "run", dir.join("experiment.toml").to_str().unwrap(), "--out", again.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(read(&again.join("quickstart/0001/stats.json")), read(&dir.join("stats.json")));
}

#[test]
fn same_experiment_same_bytes() {
    let out = tmp_dir("determinism");
    for _ in 0..2 {
        let (code, _, stderr) = tradelab(&["-q", "run", "experiments/quickstart.toml", "--out", out.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
    }
    for f in ["stats.json", "equity.csv", "fills.csv", "trades.csv", "orders.csv", "weights.csv"] {
        assert_eq!(read(&out.join("quickstart/0001").join(f)), read(&out.join("quickstart/0002").join(f)), "{f}");
    }
}

#[test]
fn exit_codes_and_error_messages() {
    let dir = tmp_dir("exit_codes");
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[experiment]\nname = \"x\"\n[data]\npath = \"y\"\n[risk]\nstop_los = 0.1\n").unwrap();
    let (code, _, stderr) = tradelab(&["run", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("risk.stop_los: unknown key, did you mean stop_loss?"), "{stderr}");
    let csv = dir.join("BAD.csv");
    std::fs::write(&csv, "timestamp,open,high,low,close,volume\n2024-01-01T00:00:00Z,1,2,1,1,1\n2024-01-01T01:00:00Z,1,0.5,1,1,1\n")
        .unwrap();
    let (code, _, stderr) = tradelab(&["data", "inspect", csv.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(stderr.contains("BAD.csv line 3: high-below-low"), "{stderr}");
    let (code, _, _) = tradelab(&["run"]);
    assert_eq!(code, 2);
    let (code, _, _) = tradelab(&["run", "no/such/file.toml"]);
    assert_eq!(code, 2);
    // Epoch seconds read as milliseconds, and an equity file going back in time.
    let secs = dir.join("SECS.csv");
    std::fs::write(&secs, "timestamp,open,high,low,close,volume\n1704067200,1,1,1,1,1\n1704070800,1,1,1,1,1\n").unwrap();
    let f = dir.join("unit.toml");
    std::fs::write(&f, format!("[experiment]\nname = \"x\"\n[data]\npath = \"{}\"\ntimestamp_unit = \"ms\"\n", secs.display())).unwrap();
    let (code, _, stderr) = tradelab(&["run", f.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SECS.csv line 2: timestamp-unit") && stderr.contains("1970-01-20"), "{stderr}");
    let eq = dir.join("eq.csv");
    std::fs::write(&eq, "timestamp,equity\n2024-01-02T00:00:00Z,100\n2024-01-01T00:00:00Z,101\n2024-01-03T00:00:00Z,102\n").unwrap();
    let (code, _, stderr) = tradelab(&["stats", eq.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("eq.csv line 3: decreasing-timestamp"), "{stderr}");
    // A malformed --set is named by its argument, never by a line of some file.
    for (set, want) in [
        ("signals.technical[0.fast=3", "--set signals.technical[0.fast=3: signals.technical[0.fast: 'technical[0'"),
        ("=3", "--set =3: '' in '' is not a key"),
        ("risk.stop_loss=2", "--set risk.stop_loss=2: risk.stop_loss: 2 must be a fraction in (0, 1)"),
    ] {
        let (code, _, stderr) = tradelab(&["run", "experiments/quickstart.toml", "--set", set]);
        assert_eq!(code, 2, "{set}: {stderr}");
        assert!(stderr.contains(want) && !stderr.contains("(line"), "{set}: {stderr}");
    }
    // Settings that cannot take effect: leverage without a margin model, a slippage that sells
    // at a price <= 0, fixed units where the rebalancer needs fractions.
    for (body, key) in [
        ("[decision]\nfraction = 2\n[risk]\nmax_position = 2\n", "decision.fraction"),
        ("[decision]\nstrength_multipliers = [0.5, 1, 1.5, 2]\n", "decision.fraction"),
        ("[execution]\nslippage_bps = 10000\n", "execution.slippage_bps"),
        ("[decision]\nsizing = \"fixed_quantity\"\n[rebalance]\ntargets = { BTC = 1.0 }\n", "decision.sizing"),
        ("[decision]\nsizing = \"fixed_quantity\"\nquantity = 0\n", "decision.quantity"),
        ("[execution]\ndelay_bars = 100000\n", "execution.delay_bars"),
        ("[[signals.technical]]\nkind = \"sma_cross\"\nfast = 10\nslow = 100000\n", "signals.technical[0]"),
        ("max_price_jump = 1\n", "data.max_price_jump"),
        ("symbols = []\n", "data.symbols"),
    ] {
        let f = dir.join("setting.toml");
        std::fs::write(&f, format!("[experiment]\nname = \"x\"\n[data]\npath = \"{}\"\n{body}", root().join("data/synth").display()))
            .unwrap();
        let (code, _, stderr) = tradelab(&["run", f.to_str().unwrap()]);
        assert_eq!(code, 2, "{body}: {stderr}");
        assert!(stderr.contains(&format!("setting.toml: {key}")), "{body}: {stderr}");
    }
}

#[test]
fn resampling_only_to_whole_multiples_anchored_at_midnight() {
    let dir = tmp_dir("resample_cli");
    let src = root().join("tests/fixtures/EURUSD_1h.csv");
    for (to, why) in [("90m", "not a whole multiple"), ("1m", "finer than the data's 1h"), ("7h", "neither divides a day")] {
        let (code, _, stderr) = tradelab(&["data", "resample", src.to_str().unwrap(), "--to", to, "--out", dir.to_str().unwrap()]);
        assert_eq!(code, 2, "{to}: {stderr}");
        assert!(stderr.contains("--to") && stderr.contains(why), "{to}: {stderr}");
    }
    let (code, _, stderr) = tradelab(&["-q", "data", "resample", src.to_str().unwrap(), "--to", "4h", "--out", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    // 4h bars start at 00:00, 04:00, ... UTC: the first (partial) one holds the 09:00-11:00 bars.
    let out = read(&std::fs::read_dir(&dir).unwrap().next().unwrap().unwrap().path());
    let first = out.lines().nth(1).unwrap();
    assert!(first.starts_with("2017-04-19T08:00:00Z,1.0716,"), "{first}");
}

#[test]
fn prices_that_break_the_arithmetic_are_refused_not_traded() {
    let dir = tmp_dir("absurd_prices");
    let head = "timestamp,open,high,low,close,volume\n";
    let rows = |f: &dyn Fn(usize) -> f64| -> String {
        (0..300).map(|i| format!("2024-01-{:02}T{:02}:00:00Z,{p},{p},{p},{p},1\n", 1 + i / 24, i % 24, p = f(i))).collect()
    };
    let exp = |data: &str, extra: &str| {
        let f = dir.join("e.toml");
        std::fs::write(
            &f,
            format!("[experiment]\nname = \"x\"\n[data]\npath = \"{data}\"\n{extra}[[signals.technical]]\nkind = \"sma_cross\"\nfast = 5\nslow = 20\n"),
        )
        .unwrap();
        f
    };
    // One bad print of 1e20 among prices near 100: refused, naming the file and the line.
    let spike = dir.join("SPIKE.csv");
    std::fs::write(&spike, format!("{head}{}", rows(&|i| if i == 100 { 1e20 } else { 100.0 + (i % 7) as f64 }))).unwrap();
    let (code, _, stderr) = tradelab(&["run", exp(spike.to_str().unwrap(), "").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("SPIKE.csv line 102: price-jump"), "{stderr}");
    // Prices so small that all the cash buys an infinite quantity: the run stops at that bar.
    let tiny = dir.join("TINY.csv");
    std::fs::write(&tiny, format!("{head}{}", rows(&|i| 1e-320 * (1.0 + (i % 50) as f64)))).unwrap();
    let (code, _, stderr) = tradelab(&["run", exp(tiny.to_str().unwrap(), "").to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("not a finite number") && stderr.contains("bar "), "{stderr}");
}

#[test]
fn stats_json_says_why_a_figure_is_undefined_and_lists_warnings() {
    // A flat market: the SMAs never cross, nothing trades, equity never moves.
    let dir = tmp_dir("undefined_stats");
    let data = dir.join("FLAT.csv");
    let mut text = String::from("timestamp,open,high,low,close,volume\n");
    for i in 0..200 {
        if i != 50 {
            text += &format!("2024-01-{:02}T{:02}:00:00Z,100,100,100,100,1\n", 1 + i / 24, i % 24);
        }
    }
    std::fs::write(&data, text).unwrap();
    let f = dir.join("flat.toml");
    std::fs::write(
        &f,
        format!(
            "[experiment]\nname = \"flat\"\n[data]\npath = \"{}\"\n[[signals.technical]]\nkind = \"sma_cross\"\nfast = 5\nslow = 20\n",
            data.display()
        ),
    )
    .unwrap();
    let (code, _, stderr) = tradelab(&["-q", "run", f.to_str().unwrap(), "--out", dir.join("out").to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    let stats: serde_json::Value = serde_json::from_str(&read(&dir.join("out/flat/0001/stats.json"))).unwrap();
    let why = stats["undefined"].as_object().expect("an undefined map");
    // Every null figure has its reason, and the reasons are the right ones.
    for (k, v) in stats.as_object().unwrap() {
        if v.is_null() {
            assert!(why.contains_key(k), "{k} is null without a reason: {why:?}");
        }
    }
    assert_eq!(why["win_rate"], "no closed trade");
    assert_eq!(why["sharpe"], "equity never changed: zero volatility");
    // The missing hour is a warning in the file, not only on the terminal.
    let warnings = stats["warnings"].as_array().expect("warnings");
    assert!(
        warnings.iter().any(|w| w.as_str().unwrap().contains("FLAT.csv") && w.as_str().unwrap().contains("1 missing bar of")),
        "{warnings:?}"
    );
}

#[test]
fn fixed_quantity_trades_whole_units_from_the_cli() {
    // 0.05 BTC per entry on the bundled data (about 1,500 of the 10,000 starting cash),
    // whatever the equity: every fill buys 0.05 or sells the 0.05 held.
    let dir = tmp_dir("fixed_quantity");
    let (code, _, stderr) = tradelab(&[
        "-q",
        "run",
        "experiments/quickstart.toml",
        "--set",
        "decision.sizing=\"fixed_quantity\"",
        "--set",
        "decision.quantity=0.05",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let run = std::fs::read_dir(dir.join("quickstart")).unwrap().next().unwrap().unwrap().path();
    let fills = read(&run.join("fills.csv"));
    let mut head = fills.lines().next().unwrap().split(',');
    let qcol = head.position(|h| h == "qty").expect("qty column");
    let qty: Vec<f64> = fills.lines().skip(1).map(|l| l.split(',').nth(qcol).unwrap().parse().unwrap()).collect();
    assert!(qty.len() >= 2);
    assert!(qty.iter().all(|q| *q == 0.05), "{qty:?}");
}

fn quickstart_like(md: tradelab::data::MarketData) -> tradelab::engine::RunResult {
    let le = Experiment::load(&root().join("experiments/quickstart.toml")).unwrap();
    let mut le = le;
    le.exp.risk.stop_loss = Some(0.03);
    let prep = prepare(&le, Arc::new(md), &Default::default()).unwrap();
    backtest(&le.exp, &prep)
}

#[test]
fn no_look_ahead_truncating_or_altering_the_future_changes_nothing_before_it() {
    let (md, _) = tradelab::data::load(
        &[root().join("data/synth")],
        &tradelab::data::LoadOptions { symbols: vec!["BTC".into()], ..Default::default() },
    )
    .unwrap();
    let full = quickstart_like(md.clone());
    for cut in [500usize, 5_000, 12_345] {
        let truncated = quickstart_like(md.slice(0..cut + 1));
        let mut altered_md = md.clone();
        for b in altered_md.bars.iter_mut() {
            for i in cut + 1..b.len() {
                b.open[i] *= 1.7;
                b.high[i] *= 1.9;
                b.low[i] *= 0.5;
                b.close[i] *= 0.6;
            }
        }
        let altered = quickstart_like(altered_md);
        for other in [&truncated, &altered] {
            let upto = |r: &tradelab::engine::RunResult| r.fills.iter().filter(|f| f.bar <= cut).cloned().collect::<Vec<_>>();
            assert_eq!(upto(&full), upto(other), "fills up to bar {cut}");
            assert_eq!(full.equity[..=cut], other.equity[..=cut], "equity up to bar {cut}");
            let orders =
                |r: &tradelab::engine::RunResult| r.orders.iter().filter(|o| o.created <= cut).map(|o| o.order.clone()).collect::<Vec<_>>();
            assert_eq!(orders(&full), orders(other), "decisions up to bar {cut}");
        }
    }
}

/// SMA cross, long only, fills at the signal bar's close, all cash in with a 0.1% fee: the
/// semantics of ../shared/bench, written out plainly here as an independent check.
#[allow(clippy::needless_range_loop)]
fn reference_sma_cross(close: &[f64], fast: usize, slow: usize, fee: f64) -> f64 {
    let mut cs = vec![0.0; close.len()];
    let mut acc = 0.0;
    for (i, c) in close.iter().enumerate() {
        acc += c;
        cs[i] = acc;
    }
    let sma = |i: usize, w: usize| {
        if i + 1 < w {
            f64::NAN
        } else if i + 1 == w {
            cs[i] / w as f64
        } else {
            (cs[i] - cs[i - w]) / w as f64
        }
    };
    let (mut cash, mut units) = (100.0, 0.0);
    for i in 1..close.len() {
        let (a0, b0, a1, b1) = (sma(i - 1, fast), sma(i - 1, slow), sma(i, fast), sma(i, slow));
        if units == 0.0 && a0 < b0 && a1 > b1 {
            units = cash / (1.0 + fee) / close[i];
            cash = 0.0;
        } else if units > 0.0 && a0 > b0 && a1 < b1 {
            cash = units * close[i] * (1.0 - fee);
            units = 0.0;
        }
    }
    (cash + units * close[close.len() - 1]) / 100.0 - 1.0
}

#[test]
fn sma_cross_agrees_with_an_independent_implementation() {
    // Real hourly BTC bars (a fixture cut from ../shared/data).
    let bars = root().join("tests/fixtures/BTCUSDT_1h.csv");
    let (md, _) = tradelab::data::load_path(&bars).unwrap();
    let close = md.bars[0].close.clone();
    let md = Arc::new(md);
    let cache = Arc::new(IndicatorCache::default());
    for (fast, slow) in [(10, 20), (10, 30), (50, 100), (2, 3), (7, 101)] {
        let text = format!(
            "[experiment]\nname = \"sweep\"\n[data]\npath = \"x\"\n[portfolio]\ninitial_cash = 100\n\
             [[signals.technical]]\nkind = \"sma_cross\"\nfast = {fast}\nslow = {slow}\nmode = \"event\"\n\
             [execution]\nfill = \"close\"\nfee_bps = 10\n"
        );
        let le = tradelab::experiment::LoadedExperiment {
            exp: Experiment::from_toml(&text, Path::new("sweep.toml")).unwrap(),
            file: "sweep.toml".into(),
        };
        let prep = prepare(&le, md.clone(), &cache).unwrap();
        let r = backtest(&le.exp, &prep);
        let got = r.equity.last().unwrap() / 100.0 - 1.0;
        let want = reference_sma_cross(&close, fast, slow, 0.001);
        assert!(close_rel(got, want), "{fast}/{slow}: engine {got} vs reference {want}");
    }
}

fn close_rel(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + b.abs())
}

#[test]
#[ignore = "needs ../shared/data"]
fn examples_run_on_real_markets_and_keep_their_invariants() {
    let h = shared("binance_usdt_1h");
    let out = tmp_dir("real");
    let (btc, eth) = (h.join("BTCUSDT.csv"), h.join("ETHUSDT.csv"));
    // Every example but the signal-file vote (its file speaks of the synthetic symbols), on real
    // Binance hours of BTC and ETH in place of its own data.
    for (k, f) in ["quickstart", "sma_long_short", "rsi_mean_reversion", "stops"].iter().enumerate() {
        let (code, _, stderr) = tradelab(&[
            "-q",
            "run",
            &format!("experiments/{f}.toml"),
            "--data",
            btc.to_str().unwrap(),
            "--data",
            eth.to_str().unwrap(),
            "--set",
            "data.symbols=[\"BTCUSDT\",\"ETHUSDT\"]",
            "--set",
            "decision.fraction=0.5",
            "--set",
            "risk.max_position=0.5",
            "--set",
            "risk.stop_loss=0.05",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_eq!(code, 0, "{f}: {stderr}");
        let le = Experiment::load(&root().join(format!("experiments/{f}.toml"))).unwrap();
        let dir = out.join(&le.exp.experiment.name).join("0001");
        // Weights (positions at close / equity) plus cash sum to 1 on every bar; without shorts
        // nothing is negative and positions never exceed equity.
        for line in read(&dir.join("weights.csv")).lines().skip(1) {
            let v: Vec<f64> = line.split(',').skip(1).map(|x| x.parse().unwrap()).collect();
            assert!(close(v.iter().sum::<f64>(), 1.0, 1e-9), "{f}: {line}");
            if !le.exp.portfolio.allow_short {
                assert!(v.iter().all(|w| *w >= -1e-9) && v[0] + v[1] <= 1.0 + 1e-9, "{f}: {line}");
            }
        }
        let stats: serde_json::Value = serde_json::from_str(&read(&dir.join("stats.json"))).unwrap();
        assert!(stats["trades"].as_u64().unwrap() > 5, "{f}");
        assert!(read(&dir.join("risk_events.csv")).contains("stop_loss"), "{f} (run {k})");
    }
}

#[test]
fn trade_statistics_by_formula_and_stats_command() {
    // Market-on-close, no fees: trades 100 -> 110 (win), 110 -> 99 (loss), 99 -> 108.9 (win).
    use tradelab::engine::Prepared;
    let closes = [100.0, 100.0, 110.0, 110.0, 99.0, 99.0, 108.9, 108.9];
    let bars: Vec<Ohlcv> = closes.iter().map(|&c| (c, c, c, c, 1e9)).collect();
    let dirs = [Some(1), None, Some(0), Some(1), Some(0), Some(1), Some(0), None];
    let p: Prepared = prepared(market(&bars), vec![signal(&dirs)]);
    let le = tradelab::experiment::LoadedExperiment {
        exp: Experiment::from_toml(
            "[experiment]\nname=\"t\"\n[data]\npath=\"x\"\n[portfolio]\ninitial_cash=1000\n[execution]\nfill=\"close\"\nfee_bps=0\n",
            Path::new("t.toml"),
        )
        .unwrap(),
        file: "t.toml".into(),
    };
    let r = backtest(&le.exp, &p);
    let s = tradelab::engine::summarize(&p, &r);
    // PnL per trade: +100 (10 units), -110 (10 units at 110 -> 99), +99 (10 units 99 -> 108.9).
    let pnl = [100.0, -110.0, 99.0];
    assert_eq!(s.trades, 3);
    assert!(close(s.win_rate, 2.0 / 3.0, 1e-12));
    assert!(close(s.profit_factor, 199.0 / 110.0, 1e-9));
    assert!(close(s.expectancy, 89.0 / 3.0, 1e-9));
    let m = 89.0 / 3.0;
    let sd = (pnl.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 2.0).sqrt();
    assert!(close(s.sqn, 3f64.sqrt() * m / sd, 1e-9));
    assert!(close(s.best_trade, 0.1, 1e-9) && close(s.worst_trade, -0.1, 1e-9));
    assert!(close(s.buy_and_hold_return, 0.089, 1e-9));

    // `tradelab stats` on a hand-made curve agrees with the formula.
    let dir = tmp_dir("stats_cmd");
    let f = dir.join("eq.csv");
    std::fs::write(&f, "timestamp,equity\n2024-01-01,100\n2024-01-02,110\n2024-01-03,99\n2024-01-04,118.8\n").unwrap();
    let (code, out, err) = tradelab(&["stats", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rets = [0.1, -0.1, 0.2];
    let m = 0.2 / 3.0;
    let sd = (rets.iter().map(|x: &f64| (x - m).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!(close(v["sharpe"].as_f64().unwrap(), m / sd * 365f64.sqrt(), 1e-9));
    assert!(close(v["max_drawdown"].as_f64().unwrap(), 0.1, 1e-12));
    // With a risk-free rate of 3.65% a year, 0.0001 a day comes off each return's mean, and off
    // the one negative return in the downside deviation (over all three periods).
    let (code, out, err) = tradelab(&["stats", f.to_str().unwrap(), "--risk-free", "0.0365"]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rf = 0.0365 / 365.0;
    assert!(close(v["sharpe"].as_f64().unwrap(), (m - rf) / sd * 365f64.sqrt(), 1e-9));
    let downside = ((0.1 + rf).powi(2) / 3.0).sqrt();
    assert!(close(v["sortino"].as_f64().unwrap(), (m - rf) / downside * 365f64.sqrt(), 1e-9));
    let (code, _, err) = tradelab(&["stats", f.to_str().unwrap(), "--risk-free", "NaN"]);
    assert_eq!(code, 2);
    assert!(err.contains("--risk-free NaN"), "{err}");
    // Six weeks of weekday closes starting on a Friday (its first step spans the weekend): daily
    // points of a market closed at weekends, 252 a year.
    let mut text = String::from("timestamp,equity\n");
    let friday = 1_704_412_800_000i64; // 2024-01-05
    for k in 0..42 {
        let t = friday + k * 86_400_000;
        if tradelab::data::time::weekday(t / 86_400_000) < 5 {
            writeln!(text, "{},{}", tradelab::data::time::format_ts(t), 100.0 + k as f64).unwrap();
        }
    }
    std::fs::write(&f, text).unwrap();
    let (code, out, err) = tradelab(&["stats", f.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["periods_per_year"].as_f64(), Some(252.0));
}

#[test]
fn skipping_idle_bars_changes_no_result() {
    // A drawdown limit that never triggers turns bar skipping off: the curve, fills and
    // drawdown must be identical, and the return statistics equal up to the grouping of sums
    // (skipped bars are summed per stretch, not bar by bar).
    let (md, _) = tradelab::data::load(&[root().join("data/synth")], &tradelab::data::LoadOptions::default()).unwrap();
    let md = Arc::new(md);
    for f in ["experiments/quickstart.toml", "experiments/multi_signal_vote.toml", "experiments/sma_long_short.toml"] {
        let le = Experiment::load(&root().join(f)).unwrap();
        let mut slow = le.clone();
        slow.exp.risk.max_drawdown = Some(0.999_999);
        let cache = Arc::new(IndicatorCache::default());
        let a = backtest(&le.exp, &prepare(&le, md.clone(), &cache).unwrap());
        let b = backtest(&slow.exp, &prepare(&slow, md.clone(), &cache).unwrap());
        assert_eq!(a.equity, b.equity, "{f}");
        assert_eq!(a.fills, b.fills, "{f}");
        assert_eq!(a.exposure_bars, b.exposure_bars, "{f}");
        let (sa, sb) = (a.stream.stats(8760.0), b.stream.stats(8760.0));
        assert_eq!(
            (sa.bars, sa.final_equity, sa.max_drawdown, sa.max_drawdown_bars),
            (sb.bars, sb.final_equity, sb.max_drawdown, sb.max_drawdown_bars),
            "{f}"
        );
        for (x, y, what) in
            [(sa.sharpe, sb.sharpe, "sharpe"), (sa.sortino, sb.sortino, "sortino"), (sa.ann_volatility, sb.ann_volatility, "volatility")]
        {
            assert!((x - y).abs() <= 1e-12 * x.abs().max(1.0), "{f} {what}: {x} vs {y}");
        }
        assert!((a.stream.mean_equity() - b.stream.mean_equity()).abs() <= 1e-12 * a.stream.mean_equity(), "{f}");
        assert!(sa.sharpe.is_finite() && sa.max_drawdown > 0.0, "{f}");
    }
}

#[test]
fn regime_eval_reports_label_steadiness_with_or_without_true_labels() {
    // The truth's changes and runs, counted here from the generator's file.
    let truth: Vec<String> =
        read(&root().join("data/synth/_regimes.csv")).lines().skip(1).map(|l| l.split(',').nth(1).unwrap().to_string()).collect();
    let changes = truth.windows(2).filter(|w| w[0] != w[1]).count();
    let mut runs = vec![1usize];
    for w in truth.windows(2) {
        if w[0] == w[1] {
            *runs.last_mut().unwrap() += 1;
        } else {
            runs.push(1);
        }
    }
    let longest = runs.iter().max().unwrap();
    let set = ["--set", "detector=\"rules\""];
    let (code, with, stderr) = tradelab(&["regime", "eval", set[0], set[1], "data/synth/BTC.parquet"]);
    assert_eq!(code, 0, "{stderr}");
    let want = format!("truth   : {changes} label changes over {} bars,", truth.len());
    assert!(with.contains(&want) && with.contains(&format!("longest {longest};")), "{want}\n{with}");
    // The same bars without the true labels beside them: steadiness only, the same figures.
    let dir = tmp_dir("no_truth");
    std::fs::copy(root().join("data/synth/BTC.parquet"), dir.join("BTC.parquet")).unwrap();
    let (code, without, stderr) = tradelab(&["regime", "eval", set[0], set[1], dir.join("BTC.parquet").to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(without.contains("no true labels to score against"), "{without}");
    let detected = |s: &str| s.lines().find(|l| l.starts_with("detected:")).map(String::from);
    assert!(detected(&with).is_some());
    assert_eq!(detected(&with), detected(&without));
    assert!(!without.contains("balanced accuracy"), "{without}");
}
