//! Bars for the sweep benchmarks at any size: `bench_bars OUT_DIR BARS SYMBOLS [SEED]` writes
//! SYMBOLS files `S0.csv`, `S1.csv`, ... of BARS one-minute bars each, from 2020-01-01.
//!
//! Each symbol is a geometric random walk of Student-t (5 degrees of freedom) log returns with
//! a per-bar scale of 0.1% (about 23% a year at minute bars); the open is the previous close,
//! high and low reach past the body by a half-normal wick of the same scale. These parameters
//! were set here, independently of `tradelab data synth`; they make a market with many SMA
//! crossings, which is all the benchmarks need.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal, StudentT};
use std::io::Write;

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: bench_bars OUT_DIR BARS SYMBOLS [SEED]");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(&args[1]);
    let bars: usize = args[2].parse().expect("BARS: a whole number");
    let symbols: usize = args[3].parse().expect("SYMBOLS: a whole number");
    let seed: u64 = args.get(4).map_or(7, |s| s.parse().expect("SEED: a whole number"));
    std::fs::create_dir_all(&dir)?;
    const START_MS: i64 = 1_577_836_800_000; // 2020-01-01T00:00:00Z
    let t: StudentT<f64> = StudentT::new(5.0).expect("5 degrees of freedom");
    // Student-t(5) has variance 5/3: scaled to a 0.1% deviation per bar.
    let scale = 0.001 / (5.0f64 / 3.0).sqrt();
    let wick: Normal<f64> = Normal::new(0.0, 0.001).expect("a normal");
    for s in 0..symbols {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(1000).wrapping_add(s as u64));
        let path = dir.join(format!("S{s}.csv"));
        let mut w = std::io::BufWriter::new(std::fs::File::create(&path)?);
        writeln!(w, "timestamp,open,high,low,close,volume")?;
        let mut close = 100.0f64;
        for i in 0..bars {
            let open = close;
            close = open * (scale * t.sample(&mut rng)).exp();
            let hi = open.max(close) * (1.0 + wick.sample(&mut rng).abs());
            let lo = open.min(close) * (1.0 - wick.sample(&mut rng).abs());
            let ts = START_MS + 60_000 * i as i64;
            let secs = ts / 1000;
            let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
            let (y, m, d) = civil(days);
            writeln!(w, "{y:04}-{m:02}-{d:02}T{:02}:{:02}:00Z,{open:.8},{hi:.8},{lo:.8},{close:.8},1", rem / 3600, rem % 3600 / 60)?;
        }
        w.flush()?;
    }
    eprintln!("wrote {symbols} x {bars} bars to {}", dir.display());
    Ok(())
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's civil_from_days).
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}
