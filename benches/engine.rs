//! Engine throughput: one SMA-cross backtest through the full pipeline (signals prepared once,
//! then decision, risk, execution and accounting per bar), on 1,000,000 bars of one symbol and
//! on a 10-symbol portfolio; the same crossover written as rules, and the RSI/SMA rules strategy
//! (a strategy is asked at every bar); plus the indicator kernels; and a whole grid sweep (500
//! SMA-cross pairs through the batch path) at 100,000 and 1,000,000 bars.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use std::sync::Arc;
use tradelab::data::{align, AlignPolicy, MarketData};
use tradelab::engine::{backtest, backtest_stats, prepare};
use tradelab::experiment::{Experiment, LoadedExperiment};
use tradelab::synth::{SynthConfig, SynthSymbol};

fn market(symbols: usize, bars: usize) -> MarketData {
    let cfg = SynthConfig {
        bars,
        symbols: (0..symbols)
            .map(|i| SynthSymbol { name: format!("S{i}"), price: 100.0 + i as f64, vol_mult: 1.0, notional_per_bar: 1e6 })
            .collect(),
        ..SynthConfig::default()
    };
    let m = cfg.generate().expect("synthetic market");
    align(&m.series, cfg.timeframe, AlignPolicy::Inner).expect("aligned")
}

fn experiment(fraction: f64) -> LoadedExperiment {
    let text = format!(
        "[experiment]\nname = \"bench\"\n[data]\npath = \"x\"\n[[signals.technical]]\nkind = \"sma_cross\"\nfast = 20\nslow = 100\n\
         [decision]\nfraction = {fraction}\n[execution]\nfee_bps = 10\nslippage_bps = 2\n"
    );
    LoadedExperiment { exp: Experiment::from_toml(&text, "bench.toml".as_ref()).expect("valid"), file: "bench.toml".into() }
}

fn bench_engine(c: &mut Criterion) {
    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    for (symbols, bars, fraction) in [(1usize, 1_000_000usize, 1.0), (10, 1_000_000, 0.1)] {
        let md = Arc::new(market(symbols, bars));
        let le = experiment(fraction);
        let prep = prepare(&le, md, &Default::default()).expect("prepared");
        g.throughput(Throughput::Elements((symbols * bars) as u64));
        g.bench_function(format!("sma_cross_{symbols}sym_{bars}bars_recorded"), |b| {
            b.iter(|| black_box(backtest(&le.exp, &prep)).equity.len())
        });
        g.bench_function(format!("sma_cross_{symbols}sym_{bars}bars_streaming"), |b| {
            b.iter(|| black_box(backtest_stats(&le.exp, &prep)).fills.len())
        });
    }
    g.finish();
}

fn loaded(body: &str) -> LoadedExperiment {
    let text = format!("[experiment]\nname = \"bench\"\n[data]\npath = \"x\"\n{body}[execution]\nfee_bps = 10\nslippage_bps = 2\n");
    LoadedExperiment { exp: Experiment::from_toml(&text, "bench.toml".as_ref()).expect("valid"), file: "bench.toml".into() }
}

fn bench_strategies(c: &mut Criterion) {
    let bars = 1_000_000;
    let md = Arc::new(market(1, bars));
    let mut g = c.benchmark_group("strategies");
    g.sample_size(10);
    g.throughput(Throughput::Elements(bars as u64));
    let cases = [
        ("sma_cross_event_builtin", "[[signals.technical]]\nkind = \"sma_cross\"\nfast = 20\nslow = 100\nmode = \"event\"\n"),
        ("sma_cross_event_rules", "[[signals.rules]]\nentry = \"crosses_above(sma(20), sma(100))\"\nexit = \"crosses_below(sma(20), sma(100))\"\n"),
        (
            "rsi_sma_rules",
            "[[signals.rules]]\nentry = \"rsi(14) < 30 and close > sma(200)\"\nexit = \"crosses_above(rsi(14), 70) or bars_in_trade >= 48\"\n",
        ),
    ];
    for (name, body) in cases {
        let le = loaded(body);
        let cache = Default::default();
        let prep = prepare(&le, md.clone(), &cache).expect("prepared");
        g.bench_function(format!("{name}_1m_streaming"), |b| b.iter(|| black_box(backtest_stats(&le.exp, &prep)).fills.len()));
        // What one more optimizer candidate costs: prepared again through the warm cache, then run.
        g.bench_function(format!("{name}_1m_candidate"), |b| {
            b.iter(|| black_box(backtest_stats(&le.exp, &prepare(&le, md.clone(), &cache).expect("prepared"))).fills.len())
        });
    }
    g.finish();
}

fn bench_indicators(c: &mut Criterion) {
    let md = market(1, 1_000_000);
    let mut g = c.benchmark_group("indicators");
    g.sample_size(10);
    g.throughput(Throughput::Elements(1_000_000));
    g.bench_function("ema_50_1m", |b| b.iter(|| black_box(tradelab::signals::ema(&md.bars[0].close, 50))));
    g.bench_function("rsi_14_1m", |b| b.iter(|| black_box(tradelab::signals::rsi(&md.bars[0].close, 14))));
    g.bench_function("prepare_sma_cross_1m", |b| {
        b.iter(|| black_box(prepare(&experiment(1.0), Arc::new(md.clone()), &Default::default())))
    });
    g.finish();
}

/// One symbol of one-minute bars: a seeded geometric random walk with Gaussian returns of 0.1% a
/// bar (set here, apart from the synthetic market generator), open at the last close.
fn walk(bars: usize) -> MarketData {
    use rand::SeedableRng;
    use rand_distr::{Distribution, Normal};
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let step: Normal<f64> = Normal::new(0.0, 0.001).expect("a normal");
    let mut b = tradelab::data::Bars::default();
    let mut close = 100.0f64;
    for _ in 0..bars {
        let open = close;
        close = open * step.sample(&mut rng).exp();
        b.push(open, open.max(close), open.min(close), close, 1.0, true);
    }
    let ts = (0..bars as i64).map(|i| 1_577_836_800_000 + 60_000 * i).collect();
    let s = tradelab::data::SymbolSeries { symbol: "W".into(), source: "walk".into(), ts, bars: b };
    align(&[s], tradelab::data::time::Timeframe::from_ms(60_000), AlignPolicy::Inner).expect("aligned")
}

fn bench_sweep(c: &mut Criterion) {
    let mut g = c.benchmark_group("sweep");
    g.sample_size(10);
    // 500 pairs: fast 2..=11 with each of 50 slow windows 12..=61, as experiments/sma_sweep.toml
    // but smaller (its 4,950 pairs are timed from the CLI, see README).
    let body = "[[signals.technical]]\nkind = \"sma_cross\"\nfast = 2\nslow = 12\nmode = \"event\"\n\
        [execution]\nfill = \"close\"\nfee_bps = 10\nmin_qty = 1e-8\n\
        [optimize]\nmethod = \"grid\"\nobjective = \"total_return\"\n\
        [optimize.space]\n\"signals.technical[0].fast\" = [2, 11]\n\"signals.technical[0].slow\" = [12, 61]\n";
    let text = format!("[experiment]\nname = \"bench\"\n[data]\npath = \"x\"\n{body}");
    let le = LoadedExperiment { exp: Experiment::from_toml(&text, "bench.toml".as_ref()).expect("valid"), file: "bench.toml".into() };
    for bars in [100_000usize, 1_000_000] {
        let md = Arc::new(walk(bars));
        g.throughput(Throughput::Elements((bars * 500) as u64));
        g.bench_function(format!("grid_500_sma_pairs_{bars}bars"), |b| {
            b.iter(|| {
                let mut study = tradelab::optimize::Study::new(&le, md.clone()).expect("a study");
                let r = tradelab::optimize::search(&mut study, None, &indicatif::ProgressBar::hidden()).expect("a search");
                black_box(r.count)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_engine, bench_strategies, bench_indicators, bench_sweep);
criterion_main!(benches);
