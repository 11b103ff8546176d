//! Timeframes and timestamps. Internally every timestamp is the bar's open time in
//! milliseconds since the Unix epoch (UTC).

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Milliseconds in one hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in one day.
pub const DAY_MS: i64 = 24 * HOUR_MS;

/// 1970-01-01 was a Thursday: day number + 3 counts days from the Monday before it.
const FROM_MONDAY: i64 = 3;

/// Day of the week of day number `day` (days since 1970-01-01, UTC): Monday is 0, Sunday 6.
pub fn weekday(day: i64) -> usize {
    (day + FROM_MONDAY).rem_euclid(7) as usize
}

/// Week number of day number `day`: weeks run Monday to Sunday, week 0 holds 1970-01-01.
pub fn week(day: i64) -> i64 {
    (day + FROM_MONDAY).div_euclid(7)
}

/// Trading days in a year of a market closed at weekends (the convention of backtesting.py,
/// quantstats and empyrical).
pub const TRADING_DAYS: f64 = 252.0;

/// Bars in a year of the bars opening at `ts` (increasing) of timeframe `tf`, counted as
/// backtesting.py and quantstats count them: a market that trades at weekends (crypto) has
/// 365-day years; one that does not (equities, FX: at most 60% of the weekend share of a
/// 7-day week, as backtesting.py decides) has [`TRADING_DAYS`] days of as many bars as its
/// typical (median) UTC day holds. Bars longer than a day, and data spanning under two weeks
/// (too short to tell), count 365-day years.
pub fn bars_per_year(ts: &[i64], tf: Timeframe) -> f64 {
    bars_per_year_on(ts, tf, closed_at_weekends(ts, tf))
}

/// [`bars_per_year`] of bars whose market is known to close at weekends (`closed`) or not.
pub fn bars_per_year_on(ts: &[i64], tf: Timeframe, closed: bool) -> f64 {
    if !closed || ts.is_empty() || tf.ms > DAY_MS {
        return tf.bars_per_year();
    }
    let mut per_day: Vec<usize> = ts.chunk_by(|a, b| a.div_euclid(DAY_MS) == b.div_euclid(DAY_MS)).map(<[i64]>::len).collect();
    per_day.sort_unstable();
    TRADING_DAYS * per_day[per_day.len() / 2] as f64
}

/// Whether the bars opening at `ts` (increasing) of timeframe `tf` come from a market closed at
/// weekends: at most 60% of a 7-day week's weekend share of them open on a Saturday or Sunday
/// (UTC), as backtesting.py decides. Bars longer than a day, and data spanning under two weeks,
/// cannot tell: false.
pub fn closed_at_weekends(ts: &[i64], tf: Timeframe) -> bool {
    weekend_calendar(ts, tf) == Some(true)
}

/// [`closed_at_weekends`], or None when the bars cannot tell (longer than a day, or spanning
/// under two weeks).
pub fn weekend_calendar(ts: &[i64], tf: Timeframe) -> Option<bool> {
    let (Some(first), Some(last)) = (ts.first(), ts.last()) else { return None };
    if tf.ms > DAY_MS || last - first < 14 * DAY_MS {
        return None;
    }
    let weekend = ts.iter().filter(|t| weekday(t.div_euclid(DAY_MS)) >= 5).count();
    Some(weekend as f64 <= ts.len() as f64 * (2.0 / 7.0) * 0.6)
}

/// The most common of `diffs` (ties: the smaller); None when empty.
pub fn most_common(mut diffs: Vec<i64>) -> Option<i64> {
    diffs.sort_unstable();
    let (mut best, mut best_n, mut i) = (*diffs.first()?, 0usize, 0usize);
    while i < diffs.len() {
        let j = diffs[i..].partition_point(|&d| d == diffs[i]) + i;
        if j - i > best_n {
            best = diffs[i];
            best_n = j - i;
        }
        i = j;
    }
    Some(best)
}

/// A bar length such as `1m`, `5m`, `1h`, `4h`, `1d`, `1w`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timeframe {
    /// Length in milliseconds.
    pub ms: i64,
}

impl Timeframe {
    /// A timeframe of `ms` milliseconds.
    pub fn from_ms(ms: i64) -> Self {
        Timeframe { ms }
    }

    /// Bars in a 365-day year (crypto trades every day). For a given series of bars, whose
    /// market may close at weekends, see [`bars_per_year`].
    pub fn bars_per_year(&self) -> f64 {
        365.0 * DAY_MS as f64 / self.ms as f64
    }

    /// Start of the bucket of this timeframe that holds `ts`. Weeks start on Monday 00:00 UTC;
    /// every other timeframe is aligned to the epoch (so days start at 00:00 UTC).
    pub fn bucket(&self, ts: i64) -> i64 {
        // Multiples of a week start on Monday 1970-01-05.
        let offset = if self.ms % (7 * DAY_MS) == 0 { (7 - FROM_MONDAY) * DAY_MS } else { 0 };
        (ts - offset).div_euclid(self.ms) * self.ms + offset
    }
}

impl FromStr for Timeframe {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: i64 = num.parse().map_err(|_| format!("bad timeframe '{s}': expected a number then a unit, e.g. 1h, 4h, 1d"))?;
        let unit_ms = match unit {
            "s" => 1_000,
            "m" | "min" => 60_000,
            "h" => HOUR_MS,
            "d" => DAY_MS,
            "w" => 7 * DAY_MS,
            _ => return Err(format!("bad timeframe '{s}': unit must be one of s, m, h, d, w")),
        };
        if n <= 0 {
            return Err(format!("bad timeframe '{s}': must be positive"));
        }
        Ok(Timeframe { ms: n * unit_ms })
    }
}

impl fmt::Display for Timeframe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, ms) in [("w", 7 * DAY_MS), ("d", DAY_MS), ("h", HOUR_MS), ("m", 60_000), ("s", 1_000)] {
            if self.ms % ms == 0 {
                return write!(f, "{}{}", self.ms / ms, unit);
            }
        }
        write!(f, "{}ms", self.ms)
    }
}

impl Serialize for Timeframe {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timeframe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// How numeric or text timestamps in a file are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimestampUnit {
    /// Detect: text is ISO-8601; numbers are seconds, ms, us or ns by magnitude.
    #[default]
    Auto,
    /// ISO-8601 text (`2024-01-01T00:00:00Z`, `2024-01-01 00:00:00`, `2024-01-01`).
    Iso,
    /// Epoch seconds.
    S,
    /// Epoch milliseconds.
    Ms,
    /// Epoch microseconds.
    Us,
    /// Epoch nanoseconds.
    Ns,
}

/// Epoch number to ms, detecting the unit by magnitude when `unit` is `Auto`: below 1e11 is
/// seconds (up to year 5138), below 1e14 ms, below 1e17 us, else ns.
pub fn epoch_to_ms(v: f64, unit: TimestampUnit) -> Option<i64> {
    if !v.is_finite() {
        return None;
    }
    let unit = match unit {
        TimestampUnit::Auto | TimestampUnit::Iso => {
            let a = v.abs();
            if a < 1e11 {
                TimestampUnit::S
            } else if a < 1e14 {
                TimestampUnit::Ms
            } else if a < 1e17 {
                TimestampUnit::Us
            } else {
                TimestampUnit::Ns
            }
        }
        u => u,
    };
    let ms = match unit {
        TimestampUnit::S => v * 1e3,
        TimestampUnit::Ms => v,
        TimestampUnit::Us => v / 1e3,
        _ => v / 1e6,
    };
    Some(ms.round() as i64)
}

/// Parse one timestamp written as text: ISO-8601 (with `Z`, an offset, or naive = UTC), a date,
/// or an epoch number (unit per `unit`).
pub fn parse_timestamp(s: &str, unit: TimestampUnit) -> Option<i64> {
    let s = s.trim();
    if unit != TimestampUnit::Iso {
        if let Ok(v) = s.parse::<f64>() {
            return epoch_to_ms(v, unit);
        }
        if unit != TimestampUnit::Auto {
            return None;
        }
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%d %H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.timestamp_millis());
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(Utc.from_utc_datetime(&dt).timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| Utc.from_utc_datetime(&dt).timestamp_millis())
}

/// Format ms since epoch as ISO-8601 UTC with a `Z` (seconds precision unless ms are present).
pub fn format_ts(ms: i64) -> String {
    // Years 1970-9999 directly (the hot case: every row of every curve written); chrono's
    // formatter, which parses its pattern on every call, for the rest.
    if (0..253_402_300_800_000).contains(&ms) {
        return format_ts_fast(ms);
    }
    match Utc.timestamp_millis_opt(ms).single() {
        Some(dt) if ms % 1000 == 0 => dt.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Some(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        None => ms.to_string(),
    }
}

/// `format_ts` for 0 <= ms < year 10000: the civil date from the day number (Hinnant's
/// `civil_from_days`), written digit by digit.
fn format_ts_fast(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(DAY_MS), ms.rem_euclid(DAY_MS));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (secs, milli) = (in_day / 1000, in_day % 1000);
    let mut out = [0u8; 24];
    let mut put = |at: usize, v: i64, width: usize| {
        let mut v = v;
        for k in (0..width).rev() {
            out[at + k] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, y, 4);
    put(5, m, 2);
    put(8, d, 2);
    put(11, secs / 3600, 2);
    put(14, secs / 60 % 60, 2);
    put(17, secs % 60, 2);
    put(20, milli, 3);
    for (at, c) in [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':'), (19, b'.')] {
        out[at] = c;
    }
    let len = if milli == 0 {
        out[19] = b'Z';
        20
    } else {
        out[23] = b'Z';
        24
    };
    out[..len].iter().map(|b| *b as char).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_year_has_365_days_where_the_market_trades_at_weekends_and_252_where_it_does_not() {
        // 2024-01-01 was a Monday.
        let monday = parse_timestamp("2024-01-01T00:00:00Z", TimestampUnit::Auto).unwrap();
        let (h, d) = (Timeframe::from_ms(HOUR_MS), Timeframe::from_ms(DAY_MS));
        let days = |n: i64, keep: &dyn Fn(i64) -> bool| -> Vec<i64> { (0..n).map(|k| monday + k * DAY_MS).filter(|t| keep(*t)).collect() };
        let weekday_of = |t: i64| weekday(t.div_euclid(DAY_MS));
        // Daily bars every day (crypto): 365; weekdays only (equities): 252.
        assert_eq!(bars_per_year(&days(140, &|_| true), d), 365.0);
        assert_eq!(bars_per_year(&days(140, &|t| weekday_of(t) < 5), d), 252.0);
        // Hourly bars around the clock: 8,760; FX hours (Sunday 22:00 to Friday 22:00 UTC): 24 a
        // trading day, 6,048; US equity hours (14:00 to 20:00 UTC bars): 7 a day, 1,764.
        let hours = |keep: &dyn Fn(i64, i64) -> bool| -> Vec<i64> {
            (0..140 * 24).map(|k| monday + k * HOUR_MS).filter(|t| keep(weekday_of(*t) as i64, t.rem_euclid(DAY_MS) / HOUR_MS)).collect()
        };
        assert_eq!(bars_per_year(&hours(&|_, _| true), h), 8760.0);
        let fx = hours(&|wd, hr| (wd < 4) || (wd == 4 && hr < 22) || (wd == 6 && hr >= 22));
        assert_eq!(bars_per_year(&fx, h), 6048.0);
        assert_eq!(bars_per_year(&hours(&|wd, hr| wd < 5 && (14..=20).contains(&hr)), h), 1764.0);
        // Under two weeks cannot tell a closed weekend from a quiet one: 365-day years.
        assert_eq!(bars_per_year(&days(12, &|t| weekday_of(t) < 5), d), 365.0);
        // Bars longer than a day keep calendar years: 365 / 7 weekly bars.
        let weeks: Vec<i64> = (0..60).map(|k| monday + k * 7 * DAY_MS).collect();
        assert_eq!(bars_per_year(&weeks, Timeframe::from_ms(7 * DAY_MS)), 365.0 / 7.0);
    }

    #[test]
    fn fast_timestamps_are_chrono_s() {
        use rand::{Rng, SeedableRng};
        let chrono_fmt = |ms: i64| {
            let dt = Utc.timestamp_millis_opt(ms).single().unwrap();
            if ms % 1000 == 0 {
                dt.format("%Y-%m-%dT%H:%M:%SZ").to_string()
            } else {
                dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            }
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let edges = [0, 999, 1000, 951_782_400_000, 951_868_799_999, 4_107_542_400_000, 253_402_300_799_999];
        for ms in edges.into_iter().chain((0..20_000).map(|_| rng.gen_range(0..253_402_300_800_000))) {
            // Whole seconds, whole days and odd milliseconds alike.
            for ms in [ms, ms - ms % 1000, ms - ms % DAY_MS] {
                assert_eq!(format_ts(ms), chrono_fmt(ms), "{ms}");
            }
        }
        assert_eq!(format_ts(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn timeframes_parse_and_print() {
        assert_eq!("4h".parse::<Timeframe>().unwrap().ms, 4 * HOUR_MS);
        assert_eq!("15m".parse::<Timeframe>().unwrap().to_string(), "15m");
        assert_eq!(Timeframe::from_ms(DAY_MS).to_string(), "1d");
        assert!("4x".parse::<Timeframe>().is_err());
        assert!("0h".parse::<Timeframe>().is_err());
    }

    #[test]
    fn weeks_start_on_monday() {
        let w: Timeframe = "1w".parse().unwrap();
        // 2024-01-10 (Wednesday) belongs to the week of Monday 2024-01-08.
        let wed = parse_timestamp("2024-01-10T13:00:00Z", TimestampUnit::Auto).unwrap();
        assert_eq!(format_ts(w.bucket(wed)), "2024-01-08T00:00:00Z");
    }

    #[test]
    fn weekdays_and_weeks_agree_with_the_calendar() {
        use chrono::Datelike;
        // Every day from 1969-12-01 to 1970-02-28 and around 2024-01-01, against chrono's
        // weekday; a week number changes exactly on Mondays.
        for day in (-31..59).chain(19_700..19_760) {
            let date = DateTime::from_timestamp(day * 86_400, 0).unwrap().date_naive();
            assert_eq!(weekday(day), date.weekday().num_days_from_monday() as usize, "{date}");
            assert_eq!(week(day) != week(day - 1), weekday(day) == 0, "{date}");
        }
        // 1970-01-01 (a Thursday) is in week 0, and Monday 1970-01-05 starts week 1.
        assert_eq!((week(-4), week(-3), week(0), week(3), week(4)), (-1, 0, 0, 0, 1));
    }

    #[test]
    fn timestamps_in_every_supported_spelling() {
        let want = 1_704_067_200_000; // 2024-01-01T00:00:00Z
        for s in [
            "2024-01-01T00:00:00Z",
            "2024-01-01 00:00:00",
            "2024-01-01",
            "2024-01-01T01:00:00+01:00",
            "1704067200",
            "1704067200000",
            "1704067200000000",
        ] {
            assert_eq!(parse_timestamp(s, TimestampUnit::Auto), Some(want), "{s}");
        }
        assert_eq!(parse_timestamp("1704067200", TimestampUnit::Ms), Some(1_704_067_200));
        assert_eq!(parse_timestamp("yesterday", TimestampUnit::Auto), None);
        assert_eq!(format_ts(want), "2024-01-01T00:00:00Z");
    }
}
