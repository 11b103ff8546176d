//! Loaders against the real data in ../shared/data: every format, values checked against the
//! source text, and the 1h -> 1d resampling check.

mod common;
use common::*;
use tradelab::data::{self, LoadOptions};

/// Parse the source CSV by hand (a second, independent reader).
fn csv_rows(p: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(p).unwrap().lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

#[test]
#[ignore = "needs ../shared/data"]
fn binance_csv_values_match_the_source() {
    let p = shared("binance_usdt_1h/BTCUSDT.csv");
    let rows = csv_rows(&p);
    let (md, report) = data::load_path(&p).unwrap();
    assert_eq!(md.len(), rows.len());
    assert_eq!(md.timeframe.to_string(), "1h");
    for &i in &[0, 1, 1000, rows.len() - 1] {
        let r = &rows[i];
        assert_eq!(data::time::format_ts(md.timestamps[i]), r[0]);
        let b = &md.bars[0];
        let got = [b.open[i], b.high[i], b.low[i], b.close[i], b.volume[i]];
        let want: Vec<f64> = r[1..6].iter().map(|x| x.parse().unwrap()).collect();
        assert_eq!(got.to_vec(), want, "row {i}");
    }
    // Gaps exist in this set (exchange outages) and are reported, not filled.
    assert!(report.warnings.iter().any(|w| w.message.contains("missing bars")));
}

#[test]
#[ignore = "needs ../shared/data"]
fn every_csv_set_loads() {
    for set in ["binance_usdt_1d", "binance_usdt_1h", "equities_daily", "fx_1h"] {
        let dir = shared(set);
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            let s = data::read_file(&f, &LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.len(), 1);
            assert_eq!(s[0].ts.len(), csv_rows(&f).len(), "{}", f.display());
        }
    }
}

#[test]
#[ignore = "needs ../shared/data"]
fn freqtrade_json_matches_the_csv_of_the_same_market() {
    let (j, c) = (shared("freqtrade_json/BTC_USDT-1h.json"), shared("binance_usdt_1h/BTCUSDT.csv"));
    let a = data::read_file(&j, &LoadOptions::default()).unwrap();
    let b = data::read_file(&c, &LoadOptions::default()).unwrap();
    assert_eq!(a[0].symbol, "BTC/USDT");
    let n = a[0].ts.len().min(b[0].ts.len());
    assert!(n > 40_000);
    assert_eq!(a[0].ts[..n], b[0].ts[..n]);
    assert_eq!(a[0].bars.close[..n], b[0].bars.close[..n]);
    // A folder holding 1h and 4h files of the same pairs: the timeframe picks the files.
    let dir = j.parent().unwrap().to_path_buf();
    let o = LoadOptions { timeframe: Some("4h".parse().unwrap()), ..Default::default() };
    let (md, _) = data::load(&[dir], &o).unwrap();
    assert_eq!(md.symbols, vec!["BTC/USDT", "ETH/USDT"]);
    assert_eq!(md.timeframe.to_string(), "4h");
}

#[test]
#[ignore = "needs ../shared/data"]
fn freqtrade_feather_loads_with_its_date_column() {
    let dir = shared("freqtrade_5m");
    let (md, report) = data::load(&[dir], &LoadOptions { align: data::AlignPolicy::Ffill, ..Default::default() }).unwrap();
    assert_eq!(md.symbols.len(), 10);
    assert!(md.symbols.contains(&"ETH/BTC".to_string()));
    assert_eq!(md.timeframe.to_string(), "5m");
    assert!(md.len() > 5_000);
    assert!(report.per_symbol.iter().all(|(_, _, n, _)| *n > 5_000));
    // Forward-filled bars cannot be traded and carry zero volume.
    for b in &md.bars {
        for i in 0..md.len() {
            if !b.tradable[i] {
                assert_eq!(b.volume[i], 0.0);
            }
        }
    }
}

#[test]
#[ignore = "needs ../shared/data"]
fn resampling_1h_to_1d_reproduces_the_daily_file() {
    let (h, d) = (shared("binance_usdt_1h/BTCUSDT.csv"), shared("binance_usdt_1d/BTCUSDT.csv"));
    let hourly = data::read_file(&h, &LoadOptions::default()).unwrap().remove(0);
    let r = data::resample(&hourly, "1d".parse().unwrap());
    let daily = csv_rows(&d);
    // The hourly file runs into a last, partial day that the daily file does not have yet.
    assert_eq!(r.ts.len(), daily.len() + 1);
    for (i, row) in daily.iter().enumerate() {
        assert_eq!(data::time::format_ts(r.ts[i]), row[0]);
        let want: Vec<f64> = row[1..6].iter().map(|x| x.parse().unwrap()).collect();
        let b = &r.bars;
        assert_eq!([b.open[i], b.high[i], b.low[i], b.close[i]].to_vec(), want[..4].to_vec(), "day {}", row[0]);
        // Volumes are sums of 24 decimals: equal up to float rounding.
        assert!(close(b.volume[i], want[4], 1e-12), "day {}: {} vs {}", row[0], b.volume[i], want[4]);
    }
}
