//! The data layer: every validation rule with its file, line and rule name; alignment and
//! resampling against hand-computed bars; format round trips.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use tradelab::data::{self, AlignPolicy, LoadOptions, OutFormat, Timeframe};

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

const HEAD: &str = "timestamp,open,high,low,close,volume\n";
const ROW1: &str = "2024-01-01T00:00:00Z,10,12,9,11,5\n";

#[test]
fn each_validation_rule_names_file_line_and_rule() {
    let dir = tmp_dir("validation");
    let cases = [
        ("missing_col.csv", "timestamp,open,high,low,close\n2024-01-01T00:00:00Z,1,1,1,1\n", None, "missing-column"),
        ("bad_number.csv", "2024-01-01T01:00:00Z,10,12,x9,11,5\n", Some(3), "unparsable-number"),
        ("empty_cell.csv", "2024-01-01T01:00:00Z,10,12,,11,5\n", Some(3), "missing-value"),
        ("bad_time.csv", "yesterday,10,12,9,11,5\n", Some(3), "unparsable-timestamp"),
        ("nan.csv", "2024-01-01T01:00:00Z,10,12,9,NaN,5\n", Some(3), "non-finite"),
        ("inf.csv", "2024-01-01T01:00:00Z,10,inf,9,11,5\n", Some(3), "non-finite"),
        ("zero_price.csv", "2024-01-01T01:00:00Z,0,12,9,11,5\n", Some(3), "non-positive-price"),
        ("high_low.csv", "2024-01-01T01:00:00Z,10,12,13,11,5\n", Some(3), "high-below-low"),
        ("high_close.csv", "2024-01-01T01:00:00Z,10,10.5,9,11,5\n", Some(3), "high-below-open-close"),
        ("low_open.csv", "2024-01-01T01:00:00Z,10,12,10.5,11,5\n", Some(3), "low-above-open-close"),
        ("neg_vol.csv", "2024-01-01T01:00:00Z,10,12,9,11,-1\n", Some(3), "negative-volume"),
        ("dup.csv", "2024-01-01T00:00:00Z,10,12,9,11,5\n", Some(3), "duplicate-timestamp"),
        ("decreasing.csv", "2023-12-31T23:00:00Z,10,12,9,11,5\n", Some(3), "decreasing-timestamp"),
    ];
    for (name, body, line, rule) in cases {
        let text = if rule == "missing-column" { body.to_string() } else { format!("{HEAD}{ROW1}{body}") };
        let p = write(&dir, name, &text);
        let err = data::load_path(&p).expect_err(name).to_string();
        assert!(err.contains(name), "{name}: {err}");
        assert!(err.contains(rule), "{name}: {err}");
        if let Some(l) = line {
            assert!(err.contains(&format!("line {l}")), "{name}: {err}");
        }
    }
}

#[test]
fn long_files_split_by_symbol_and_keep_line_numbers() {
    let dir = tmp_dir("long");
    let text = "timestamp,symbol,open,high,low,close,volume\n\
        2024-01-01T00:00:00Z,A,1,1,1,1,1\n2024-01-01T00:00:00Z,B,2,2,2,2,1\n\
        2024-01-01T01:00:00Z,A,1,1,1,1,1\n2024-01-01T01:00:00Z,B,2,2,2,2,1\n\
        2024-01-01T01:00:00Z,A,1,1,1,1,1\n";
    let p = write(&dir, "long.csv", text);
    let err = data::load_path(&p).unwrap_err().to_string();
    assert!(err.contains("line 6") && err.contains("duplicate-timestamp") && err.contains("line 4"), "{err}");
    let p = write(&dir, "long_ok.csv", &text[..text.len() - 33]);
    let (md, _) = data::load_path(&p).unwrap();
    assert_eq!(md.symbols, vec!["A", "B"]);
    assert_eq!(md.bars[1].close, vec![2.0, 2.0]);
}

#[test]
fn epoch_timestamps_and_custom_columns() {
    let dir = tmp_dir("epoch");
    let p = write(&dir, "X.csv", "Time,O,H,L,C,V\n1704067200,1,2,0.5,1.5,3\n1704070800,1.5,2,1,1.2,4\n");
    let mut o = LoadOptions::default();
    o.columns.timestamp = "time".into();
    o.columns.open = "O".into();
    o.columns.high = "h".into();
    o.columns.low = "L".into();
    o.columns.close = "C".into();
    o.columns.volume = "V".into();
    let (md, _) = data::load(std::slice::from_ref(&p), &o).unwrap();
    assert_eq!(md.timestamps, vec![1_704_067_200_000, 1_704_070_800_000]);
    assert_eq!(md.timeframe, "1h".parse().unwrap());
    // Overriding the unit: these seconds read as milliseconds land in January 1970, which no
    // bar data does: refused, naming the file and line, not run as 3.6-second bars.
    o.timestamp_unit = data::TimestampUnit::Ms;
    let e = data::load(&[p], &o).unwrap_err().to_string();
    assert!(e.contains("X.csv line 2: timestamp-unit") && e.contains("1970-01-20"), "{e}");
    // The same unit on millisecond numbers reads them as they are.
    let p = write(&dir, "Y.csv", "Time,O,H,L,C,V\n1704067200000,1,2,0.5,1.5,3\n1704070800000,1.5,2,1,1.2,4\n");
    let (md, _) = data::load(&[p], &o).unwrap();
    assert_eq!(md.timestamps, vec![1_704_067_200_000, 1_704_070_800_000]);
}

fn series(sym: &str, ts_h: &[i64], closes: &[f64]) -> data::SymbolSeries {
    let mut b = data::Bars::default();
    for &c in closes {
        b.push(c, c + 1.0, c * 0.9, c, 10.0, true);
    }
    data::SymbolSeries { symbol: sym.into(), source: "x".into(), ts: ts_h.iter().map(|h| h * 3_600_000).collect(), bars: b }
}

#[test]
fn inner_and_ffill_alignment() {
    let a = series("A", &[0, 1, 2, 3], &[1.0, 2.0, 3.0, 4.0]);
    let b = series("B", &[1, 3, 4], &[20.0, 40.0, 50.0]);
    let tf = Timeframe::from_ms(3_600_000);
    let md = data::align(&[a.clone(), b.clone()], tf, AlignPolicy::Inner).unwrap();
    assert_eq!(md.timestamps, vec![3_600_000, 3 * 3_600_000]);
    assert_eq!(md.bars[0].close, vec![2.0, 4.0]);
    assert_eq!(md.bars[1].close, vec![20.0, 40.0]);
    // ffill: from the latest first bar (hour 1) to the last bar of any symbol (hour 4).
    let md = data::align(&[a, b], tf, AlignPolicy::Ffill).unwrap();
    assert_eq!(md.timestamps, [1, 2, 3, 4].iter().map(|h| h * 3_600_000).collect::<Vec<i64>>());
    assert_eq!(md.bars[1].close, vec![20.0, 20.0, 40.0, 50.0]);
    assert_eq!(md.bars[1].volume, vec![10.0, 0.0, 10.0, 10.0]);
    assert_eq!(md.bars[1].tradable, vec![true, false, true, true]);
    assert_eq!((md.bars[1].open[1], md.bars[1].high[1], md.bars[1].low[1]), (20.0, 20.0, 20.0));
    assert_eq!(md.bars[0].close, vec![2.0, 3.0, 4.0, 4.0]);
    assert_eq!(md.bars[0].tradable, vec![true, true, true, false]);
}

#[test]
fn resampling_by_hand() {
    // Hours 0..6 with a missing hour 5; to 4h: buckets [0,4) and [4,8).
    let mut s = series("A", &[0, 1, 2, 3, 4, 6], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    s.bars.high[1] = 9.0;
    s.bars.low[2] = 0.25;
    let r = data::resample(&s, "4h".parse().unwrap());
    assert_eq!(r.ts, vec![0, 4 * 3_600_000]);
    assert_eq!(r.bars.open, vec![1.0, 5.0]);
    assert_eq!(r.bars.high, vec![9.0, 7.0]);
    assert_eq!(r.bars.low, vec![0.25, 4.5]);
    assert_eq!(r.bars.close, vec![4.0, 6.0]);
    assert_eq!(r.bars.volume, vec![40.0, 20.0]);
}

#[test]
fn gaps_are_counted() {
    let g = data::count_gaps(&[0, 1, 2, 5, 6, 9].map(|h: i64| h * 3_600_000), Timeframe::from_ms(3_600_000));
    assert_eq!((g.missing, g.gaps), (4, 2));
}

#[test]
fn a_market_closed_at_weekends_has_its_weekday_gaps_counted_not_its_weekends() {
    // Weekdays from Monday 2024-01-01 for four weeks, less Wednesday the 10th (a holiday midweek)
    // and Monday the 22nd (a holiday next to a weekend). Weekend closures: the weekends of the
    // 6th, 13th and 20th (the last one with the Monday holiday). Missing: the 10th alone.
    let day = 86_400_000i64;
    let monday = 1_704_067_200_000i64; // 2024-01-01
    let ts: Vec<i64> = (0..26).filter(|d| d % 7 < 5 && *d != 9 && *d != 21).map(|d| monday + d * day).collect();
    let g = data::count_gaps(&ts, Timeframe::from_ms(day));
    assert_eq!((g.missing, g.gaps, g.weekend_closures), (1, 1, 3));
    // The same dates with the weekends traded (crypto): every gap is missing data.
    let every: Vec<i64> = (0..26).filter(|d| *d != 9 && *d != 21).map(|d| monday + d * day).collect();
    let g = data::count_gaps(&every, Timeframe::from_ms(day));
    assert_eq!((g.missing, g.gaps, g.weekend_closures), (2, 2, 0));
    // A run over the third week alone (data.start .. data.end) is judged on the file's calendar:
    // its weekend before the 22nd is a closure, not two missing bars.
    let dir = tmp_dir("weekday_window");
    let rows: String = ts.iter().map(|t| format!("{},1,1,1,1,1\n", tradelab::data::time::format_ts(*t))).collect();
    let p = write(&dir, "EQ.csv", &format!("{HEAD}{rows}"));
    let o = LoadOptions { start: Some("2024-01-15".into()), end: Some("2024-01-27".into()), ..Default::default() };
    let (_, report) = data::load(std::slice::from_ref(&p), &o).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
}

#[test]
fn a_run_of_a_few_days_is_annualized_on_its_files_calendar() {
    // Ten days cannot show a calendar by themselves (365-day years); cut from files that can,
    // they take the files': GOOG daily 252 a year, EURUSD hours 252 x 24, BTCUSDT hours 365 x 24.
    let fx = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (file, start, end, per_year) in [
        ("GOOG.csv", "2010-03-01", "2010-03-11", 252.0),
        ("EURUSD_1h.csv", "2017-06-05", "2017-06-15", 252.0 * 24.0),
        ("BTCUSDT_1h.csv", "2021-02-01", "2021-02-11", 365.0 * 24.0),
    ] {
        let o = LoadOptions { start: Some(start.into()), end: Some(end.into()), ..Default::default() };
        let (md, _) = data::load(&[fx.join(file)], &o).unwrap();
        assert!(md.timestamps[md.len() - 1] - md.timestamps[0] < 14 * 86_400_000, "{file}: a short run");
        assert_eq!(md.bars_per_year(), per_year, "{file}");
        let alone = tradelab::data::time::bars_per_year(&md.timestamps, md.timeframe);
        assert_eq!(alone, 365.0 * 86_400_000.0 / md.timeframe.ms as f64, "{file}: the bars alone cannot tell");
    }
}

#[test]
fn gaps_are_reported_within_the_run_s_start_and_end() {
    // Hours 0 1 2 | 5 6 7 8 | 10 11: three missing before hour 5, one at 9. A run over hours
    // 5..9 sees the gap at 9 only (1 bar, 1 gap); over the whole file, 3 bars in 2 gaps.
    let dir = tmp_dir("gaps_window");
    let rows: String = [0, 1, 2, 5, 6, 7, 8, 10, 11].iter().map(|h| format!("2024-01-01T{h:02}:00:00Z,1,1,1,1,1\n")).collect();
    let p = write(&dir, "A.csv", &format!("{HEAD}{rows}"));
    let gaps = |start: Option<&str>, end: Option<&str>| {
        let o = LoadOptions { start: start.map(Into::into), end: end.map(Into::into), ..Default::default() };
        let (_, report) = data::load(std::slice::from_ref(&p), &o).unwrap();
        (report.per_symbol[0].3, report.warnings.iter().map(|w| w.message.clone()).collect::<Vec<_>>())
    };
    assert_eq!(gaps(None, None), (3, vec!["A: 3 missing bars of 1h in 2 gaps".to_string()]));
    assert_eq!(gaps(Some("2024-01-01T05:00:00Z"), Some("2024-01-01T12:00:00Z")), (1, vec!["A: 1 missing bar of 1h in 1 gap".to_string()]));
    assert_eq!(gaps(Some("2024-01-01T05:00:00Z"), Some("2024-01-01T09:00:00Z")), (0, vec![]));
}

#[test]
fn what_alignment_leaves_out_or_fills_is_reported_per_symbol() {
    // A: hours 0..=5. B: hours 2, 3, 5 (no hour 4).
    let dir = tmp_dir("align_report");
    let rows = |hours: &[u32]| -> String { hours.iter().map(|h| format!("2024-01-01T{h:02}:00:00Z,1,1,1,1,1\n")).collect() };
    write(&dir, "A.csv", &format!("{HEAD}{}", rows(&[0, 1, 2, 3, 4, 5])));
    write(&dir, "B.csv", &format!("{HEAD}{}", rows(&[2, 3, 5])));
    let run = |align: AlignPolicy, start: Option<&str>| {
        let o = LoadOptions { align, start: start.map(Into::into), ..Default::default() };
        let (md, report) = data::load(std::slice::from_ref(&dir), &o).unwrap();
        let msgs: Vec<String> = report.warnings.iter().map(|w| w.message.clone()).filter(|m| !m.contains(" missing bar")).collect();
        (md.len(), msgs)
    };
    // Inner: hours 2, 3, 5; A loses 0, 1 and 4.
    let (n, msgs) = run(AlignPolicy::Inner, None);
    assert_eq!(n, 3);
    assert_eq!(msgs.len(), 1, "{msgs:?}");
    assert!(msgs[0].starts_with("A: 3 of its 6 bars left out by data.align = \"inner\""), "{msgs:?}");
    assert!(msgs[0].ends_with("the run's bars are 2024-01-01T02:00:00Z to 2024-01-01T05:00:00Z"), "{msgs:?}");
    // Ffill: hours 2..=5 (from the latest first bar); A loses 0 and 1, B gets hour 4 filled in.
    let (n, msgs) = run(AlignPolicy::Ffill, None);
    assert_eq!(n, 4);
    assert!(msgs[0].starts_with("A: 2 of its 6 bars left out by data.align = \"ffill\""), "{msgs:?}");
    assert!(msgs[1].starts_with("B: 1 bars filled in at the previous close"), "{msgs:?}");
    // Counted within data.start: from hour 1, A has 5 bars, of which inner leaves out 1 and 4.
    let (_, msgs) = run(AlignPolicy::Inner, Some("2024-01-01T01:00:00Z"));
    assert!(msgs[0].starts_with("A: 2 of its 5 bars left out"), "{msgs:?}");
    // A symbol with no bar in the range is named.
    let o = LoadOptions { start: Some("2024-01-01T05:30:00Z".into()), ..Default::default() };
    let err = data::load(std::slice::from_ref(&dir), &o).unwrap_err().to_string();
    assert!(err.contains("A has no bar in that range (its data runs from 2024-01-01T00:00:00Z to 2024-01-01T05:00:00Z)"), "{err}");
}

#[test]
fn every_output_format_reads_back_identically() {
    let s = series("BTC/USDT", &[0, 1, 2], &[100.5, 101.25, 99.125]);
    let dir = tmp_dir("formats");
    let tf = Timeframe::from_ms(3_600_000);
    for f in [OutFormat::Csv, OutFormat::Parquet, OutFormat::FreqtradeJson, OutFormat::FreqtradeFeather] {
        let p = data::write_bars(&s, &dir, f, tf).unwrap();
        let back = data::read_file(&p, &LoadOptions::default()).unwrap();
        assert_eq!(back.len(), 1, "{f:?}");
        assert_eq!(back[0].ts, s.ts, "{f:?}");
        assert_eq!(back[0].bars, s.bars, "{f:?}");
        let want = if matches!(f, OutFormat::Csv | OutFormat::Parquet) { "BTC_USDT" } else { "BTC/USDT" };
        assert_eq!(back[0].symbol, want, "{f:?}");
    }
}

#[test]
fn start_end_and_symbol_selection() {
    let dir = tmp_dir("range");
    write(
        &dir,
        "A.csv",
        &format!("{HEAD}2024-01-01T00:00:00Z,1,1,1,1,1\n2024-01-01T01:00:00Z,2,2,2,2,1\n2024-01-01T02:00:00Z,3,3,3,3,1\n"),
    );
    write(
        &dir,
        "B.csv",
        &format!("{HEAD}2024-01-01T00:00:00Z,1,1,1,1,1\n2024-01-01T01:00:00Z,2,2,2,2,1\n2024-01-01T02:00:00Z,3,3,3,3,1\n"),
    );
    let o = LoadOptions {
        symbols: vec!["B".into()],
        start: Some("2024-01-01T01:00:00Z".into()),
        end: Some("2024-01-01T02:00:00Z".into()),
        ..Default::default()
    };
    let (md, _) = data::load(std::slice::from_ref(&dir), &o).unwrap();
    assert_eq!(md.symbols, vec!["B"]);
    assert_eq!(md.bars[0].close, vec![2.0]);
    let o = LoadOptions { symbols: vec!["C".into()], ..Default::default() };
    assert!(data::load(&[dir], &o).unwrap_err().to_string().contains("symbol C not found"));
}

#[test]
fn real_bars_read_back_as_their_source_text() {
    // A fixture cut from ../shared/data (Binance BTCUSDT hours), checked against a hand parse.
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/BTCUSDT_1h.csv");
    let text = std::fs::read_to_string(&p).unwrap();
    let rows: Vec<Vec<&str>> = text.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let (md, _) = data::load_path(&p).unwrap();
    assert_eq!(md.len(), rows.len());
    assert_eq!(md.timeframe.to_string(), "1h");
    let b = &md.bars[0];
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(data::time::format_ts(md.timestamps[i]), r[0]);
        let want: Vec<f64> = r[1..6].iter().map(|x| x.parse().unwrap()).collect();
        assert_eq!(vec![b.open[i], b.high[i], b.low[i], b.close[i], b.volume[i]], want, "line {}", i + 2);
    }
}
