//! Each regime detector on the family of markets of `docs/generators.md` (independent of
//! `tradelab data synth`): balanced accuracy of the product's labels against the generating
//! regimes, over all bars and after the warm-up, median and worst over seeds 1-5, the volatility
//! axis alone (`high_vol` against the rest), and the CPU time. `--pf` adds the particle filter
//! (minutes per market); `--trend-t X` sets `regime.trend_t` (the product's default otherwise).
//! Run: cargo run --release -p tradelab-research --bin detector_family [-- --pf] [--trend-t X]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{StandardNormal, StudentT};
use std::time::Instant;
use tradelab::data::{align, AlignPolicy, Bars, SymbolSeries, Timeframe};
use tradelab::experiment::{Detector, RegimeConfig};
use tradelab::regime::{accuracy, BEAR, BULL, HIGH_VOL, SIDEWAYS};

const BARS: usize = 8_760;
const SEEDS: u64 = 5;
const STEPS: usize = 16;

/// One member of the family (docs/generators.md); regimes in tradelab's id order
/// (bull, bear, sideways, high_vol).
struct Member {
    name: &'static str,
    drift: [f64; 4],
    vol: [f64; 4],
    /// Student-t degrees of freedom; 0 for normal shocks.
    nu: f64,
    garch: (f64, f64),
    rho: f64,
    mults: Vec<f64>,
    mean_bars: f64,
}

fn family() -> Vec<Member> {
    let ten: Vec<f64> = (0..10).map(|i| 0.8 + 0.8 * i as f64 / 9.0).collect();
    vec![
        Member {
            name: "calm_bull",
            drift: [0.40, -0.60, 0.0, -0.20],
            vol: [0.15, 0.30, 0.12, 0.60],
            nu: 0.0,
            garch: (0.0, 0.0),
            rho: 1.0,
            mults: vec![1.0],
            mean_bars: 500.0,
        },
        Member {
            name: "volatile_bull",
            drift: [2.00, -1.50, 0.0, 0.0],
            vol: [0.90, 0.60, 0.40, 1.60],
            nu: 5.0,
            garch: (0.05, 0.90),
            rho: 0.6,
            mults: vec![1.0, 1.2, 1.5],
            mean_bars: 400.0,
        },
        Member {
            name: "drift_only",
            drift: [3.00, -3.00, 0.0, -0.50],
            vol: [0.70, 0.70, 0.35, 1.50],
            nu: 3.0,
            garch: (0.08, 0.90),
            rho: 1.0,
            mults: vec![1.0],
            mean_bars: 150.0,
        },
        Member {
            name: "ten_symbols",
            drift: [1.20, -1.20, 0.0, -0.30],
            vol: [0.55, 0.75, 0.30, 1.30],
            nu: 4.0,
            garch: (0.04, 0.94),
            rho: 0.5,
            mults: ten,
            mean_bars: 800.0,
        },
    ]
}

fn shock(rng: &mut ChaCha8Rng, nu: f64) -> f64 {
    if nu > 0.0 {
        StudentT::new(nu).map_or(f64::NAN, |t| rng.sample(t)) * ((nu - 2.0) / nu).sqrt()
    } else {
        rng.sample(StandardNormal)
    }
}

/// One market of `m` from `seed`: the aligned bars and the true regime per bar.
fn generate(m: &Member, seed: u64) -> (tradelab::data::MarketData, Vec<u8>) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ns = m.mults.len();
    let per_year: f64 = 8_760.0;
    let (a, b) = m.garch;
    let mut h: f64 = 1.0;
    let mut reg = rng.gen_range(0..4u8);
    let mut truth = Vec::with_capacity(BARS);
    let mut price = vec![100.0f64; ns];
    let mut bars: Vec<Bars> = (0..ns).map(|_| Bars::default()).collect();
    for _ in 0..BARS {
        if rng.gen::<f64>() < 1.0 / m.mean_bars {
            reg = (reg + rng.gen_range(1..4u8)) % 4;
        }
        truth.push(reg);
        let f = shock(&mut rng, m.nu);
        for i in 0..ns {
            let e = shock(&mut rng, m.nu);
            let z = m.rho.sqrt() * f + (1.0 - m.rho).sqrt() * e;
            let sd = m.vol[reg as usize] * m.mults[i] / per_year.sqrt() * h.sqrt();
            let r = m.drift[reg as usize] / per_year + sd * z;
            // A Brownian bridge of STEPS steps from 0 to r gives the high and low.
            let (mut w, mut hi, mut lo) = (0.0f64, 0.0f64, 0.0f64);
            let step = sd / (STEPS as f64).sqrt();
            let mut path = [0.0f64; STEPS];
            for p in path.iter_mut() {
                w += step * rng.sample::<f64, _>(StandardNormal);
                *p = w;
            }
            for (j, p) in path.iter().enumerate() {
                let x = p - w * (j + 1) as f64 / STEPS as f64 + r * (j + 1) as f64 / STEPS as f64;
                hi = hi.max(x);
                lo = lo.min(x);
            }
            let o = price[i];
            let c = o * r.exp();
            let bi = &mut bars[i];
            bi.open.push(o);
            bi.close.push(c);
            bi.high.push(o * hi.max(r).exp());
            bi.low.push(o * lo.min(r).exp());
            bi.volume.push(1.0);
            bi.tradable.push(true);
            price[i] = c;
        }
        if a + b > 0.0 {
            h = (1.0 - a - b) + a * h * f * f + b * h;
        }
    }
    let start = 1_704_067_200_000i64; // 2024-01-01
    let tf = Timeframe::from_ms(3_600_000);
    let series: Vec<SymbolSeries> = bars
        .into_iter()
        .enumerate()
        .map(|(i, bars)| SymbolSeries {
            symbol: format!("S{i}"),
            source: "generated".into(),
            ts: (0..BARS as i64).map(|t| start + t * 3_600_000).collect(),
            bars,
        })
        .collect();
    (align(&series, tf, AlignPolicy::Inner).expect("one clock"), truth)
}

fn median_worst(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let with_pf = args.iter().any(|a| a == "--pf");
    let trend_t: Option<f64> = args.iter().position(|a| a == "--trend-t").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok());
    let mut detectors = vec![("rules", Detector::Rules), ("ms_garch", Detector::MsGarch)];
    if with_pf {
        detectors.push(("pf", Detector::Pf));
    }
    println!(
        "| member | detector | balanced, median (worst) | after warm-up, median (worst) | high_vol vs rest, median | CPU s per market |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut overall: Vec<(&str, Vec<f64>, f64)> = detectors.iter().map(|(n, _)| (*n, Vec::new(), 0.0)).collect();
    for m in family() {
        let markets: Vec<_> = (1..=SEEDS).map(|s| generate(&m, s)).collect();
        for (d, (name, det)) in detectors.iter().enumerate() {
            let base = RegimeConfig::default();
            let cfg = RegimeConfig { detector: *det, trend_t: trend_t.unwrap_or(base.trend_t), ..base };
            let from = cfg.warmup_bars();
            let (mut all, mut after, mut vol) = (Vec::new(), Vec::new(), Vec::new());
            let t0 = Instant::now();
            for (md, truth) in &markets {
                let l = tradelab::regime::detect(&cfg, md);
                all.push(accuracy(truth, &l.label).balanced);
                after.push(accuracy(&truth[from..], &l.label[from..]).balanced);
                // The volatility axis alone: high_vol (id 3) against everything else (id 2 here).
                let two = |v: &[u8]| v.iter().map(|x| if *x == HIGH_VOL { HIGH_VOL } else { SIDEWAYS }).collect::<Vec<u8>>();
                vol.push(accuracy(&two(truth), &two(&l.label)).balanced);
            }
            let cpu = t0.elapsed().as_secs_f64() / markets.len() as f64;
            let ((am, aw), (wm, ww), (vm, _)) = (median_worst(all.clone()), median_worst(after), median_worst(vol));
            println!(
                "| {} | {name} | {:.1}% ({:.1}%) | {:.1}% ({:.1}%) | {:.1}% | {cpu:.2} |",
                m.name,
                100.0 * am,
                100.0 * aw,
                100.0 * wm,
                100.0 * ww,
                100.0 * vm
            );
            overall[d].1.extend(all);
            overall[d].2 += cpu;
        }
    }
    println!();
    println!("| detector | median balanced accuracy over the family | CPU s per market (mean) |");
    println!("| --- | --- | --- |");
    let members = family().len() as f64;
    for (name, all, cpu) in overall {
        println!("| {name} | {:.1}% | {:.2} |", 100.0 * median_worst(all).0, cpu / members);
    }
    let _ = (BULL, BEAR);
}
