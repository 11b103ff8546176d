//! Putting symbols on one clock, resampling to coarser bars, and finding gaps.

use super::time::DAY_MS;
use super::{Bars, MarketData, SymbolSeries, Timeframe};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// How several symbols are put on one clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlignPolicy {
    /// Keep only timestamps every symbol has.
    #[default]
    Inner,
    /// Keep every timestamp from the latest first bar to the last bar of any symbol; a symbol
    /// missing a bar gets a flat bar at its previous close with zero volume, marked not
    /// tradable.
    Ffill,
}

/// Gaps in one series against a timeframe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gaps {
    /// Bars missing in total (weekend closures aside).
    pub missing: usize,
    /// Places where one or more bars are missing (weekend closures aside).
    pub gaps: usize,
    /// Spacings that are not a whole number of bars.
    pub irregular: usize,
    /// Gaps of a market closed at weekends that take in a Saturday or Sunday (UTC): the market's
    /// own closures (a holiday next to a weekend with them), not counted as missing bars.
    pub weekend_closures: usize,
}

/// Count missing bars in strictly increasing timestamps. For a market closed at weekends (see
/// [`super::time::closed_at_weekends`]) a gap that takes in a Saturday or Sunday is its weekend
/// closure, counted apart: the missing bars are those of weekday gaps (holidays, outages).
pub fn count_gaps(ts: &[i64], tf: Timeframe) -> Gaps {
    count_gaps_in(ts, tf, super::time::closed_at_weekends(ts, tf))
}

/// [`count_gaps`] of a part of a series, given whether the whole series is of a market closed at
/// weekends (a window of days cannot tell by itself).
pub fn count_gaps_in(ts: &[i64], tf: Timeframe, closed: bool) -> Gaps {
    use super::time::{weekday, DAY_MS};
    // Whether a bar opening at any of `from`, `from + tf`, ... before `to` falls on a weekend.
    let weekend_in = |from: i64, to: i64| {
        to - from >= 7 * DAY_MS || (0..).map(|k| from + k * tf.ms).take_while(|&m| m < to).any(|m| weekday(m.div_euclid(DAY_MS)) >= 5)
    };
    let mut g = Gaps::default();
    for w in ts.windows(2) {
        let d = w[1] - w[0];
        if d % tf.ms != 0 {
            g.irregular += 1;
        } else if d > tf.ms {
            if closed && weekend_in(w[0] + tf.ms, w[1]) {
                g.weekend_closures += 1;
            } else {
                g.gaps += 1;
                g.missing += (d / tf.ms - 1) as usize;
            }
        }
    }
    g
}

/// The most common spacing between bars over all series (ties: the smaller).
pub fn infer_timeframe(series: &[SymbolSeries]) -> Option<Timeframe> {
    let diffs: Vec<i64> = series.iter().flat_map(|s| s.ts.windows(2).map(|w| w[1] - w[0])).collect();
    super::time::most_common(diffs).map(Timeframe::from_ms)
}

/// Whether bars of `from` can be resampled to `to`: `to` must be a whole multiple of `from`
/// (finer or in-between timeframes would invent or mislabel bars) and either divide a UTC day or
/// be whole days, so every bucket starts at UTC midnight or a fixed time after it (weeks start on
/// Monday). The reason, when not.
pub fn check_resample(from: Timeframe, to: Timeframe) -> std::result::Result<(), String> {
    if to.ms < from.ms {
        return Err(format!("{to} is finer than the data's {from}: bars cannot be split"));
    }
    if to.ms % from.ms != 0 {
        return Err(format!("{to} is not a whole multiple of the data's {from}: its bars would straddle source bars"));
    }
    if DAY_MS % to.ms != 0 && to.ms % DAY_MS != 0 {
        return Err(format!("{to} neither divides a day nor is a whole number of days, so its bars cannot start at UTC midnight"));
    }
    Ok(())
}

/// Aggregate bars into buckets of a coarser timeframe `to` (see [`check_resample`] and
/// [`Timeframe::bucket`]): buckets anchored at UTC midnight (weeks at Monday), labelled by their
/// open time; first open, highest high, lowest low, last close, summed volume; a bucket is
/// tradable when any bar in it was. Partial buckets at the edges and around gaps are kept, as
/// pandas' `resample` does.
pub fn resample(s: &SymbolSeries, to: Timeframe) -> SymbolSeries {
    let b = &s.bars;
    let mut out = SymbolSeries { symbol: s.symbol.clone(), source: s.source.clone(), ts: Vec::new(), bars: Bars::default() };
    let mut i = 0;
    while i < s.ts.len() {
        let key = to.bucket(s.ts[i]);
        let (o, mut h, mut l, mut v, mut tr) = (b.open[i], b.high[i], b.low[i], 0.0, false);
        let mut j = i;
        while j < s.ts.len() && to.bucket(s.ts[j]) == key {
            h = h.max(b.high[j]);
            l = l.min(b.low[j]);
            v += b.volume[j];
            tr |= b.tradable[j];
            j += 1;
        }
        out.ts.push(key);
        out.bars.push(o, h, l, b.close[j - 1], v, tr);
        i = j;
    }
    out
}

/// Put every series on one clock (see [`AlignPolicy`]).
pub fn align(series: &[SymbolSeries], tf: Timeframe, policy: AlignPolicy) -> Result<MarketData> {
    if series.is_empty() {
        return Err(Error::Input("no symbols to load".into()));
    }
    let clock = clock_of(series, policy)?;
    let mut bars = Vec::with_capacity(series.len());
    for s in series {
        bars.push(on_clock(s, &clock));
    }
    Ok(MarketData { timeframe: tf, timestamps: clock, symbols: series.iter().map(|s| s.symbol.clone()).collect(), bars, calendar: None })
}

/// [`align`], taking the series: one already on the clock (the usual case) gives its bars up
/// without a copy, and each series is freed once aligned, so loading many long symbols holds
/// about one copy of the bars, not two.
pub fn align_owned(series: Vec<SymbolSeries>, tf: Timeframe, policy: AlignPolicy) -> Result<MarketData> {
    if series.is_empty() {
        return Err(Error::Input("no symbols to load".into()));
    }
    let clock = clock_of(&series, policy)?;
    let symbols = series.iter().map(|s| s.symbol.clone()).collect();
    let mut bars = Vec::with_capacity(series.len());
    for s in series {
        bars.push(if s.ts == clock { s.bars } else { on_clock(&s, &clock) });
    }
    Ok(MarketData { timeframe: tf, timestamps: clock, symbols, bars, calendar: None })
}

/// The common clock of the series (see [`AlignPolicy`]); an error when they share no time.
fn clock_of(series: &[SymbolSeries], policy: AlignPolicy) -> Result<Vec<i64>> {
    let clock: Vec<i64> = match policy {
        AlignPolicy::Inner => {
            let mut clock = series[0].ts.clone();
            for s in &series[1..] {
                clock.retain(|t| s.ts.binary_search(t).is_ok());
            }
            clock
        }
        AlignPolicy::Ffill => {
            let first = series.iter().map(|s| s.ts[0]).max().unwrap_or(0);
            let mut all: Vec<i64> = series.iter().flat_map(|s| s.ts.iter().copied().filter(|&t| t >= first)).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    };
    if clock.is_empty() {
        let spans: Vec<String> = series
            .iter()
            .map(|s| format!("{} {}..{}", s.symbol, super::time::format_ts(s.ts[0]), super::time::format_ts(*s.ts.last().unwrap_or(&0))))
            .collect();
        return Err(Error::Input(format!("the symbols share no timestamps ({}); try data.align = \"ffill\"", spans.join(", "))));
    }
    Ok(clock)
}

/// One series' bars on `clock` (forward-filled, not tradable, where it has no bar).
fn on_clock(s: &SymbolSeries, clock: &[i64]) -> Bars {
    let b = &s.bars;
    let mut out = Bars::default();
    let mut k = 0; // index into s.ts of the latest bar at or before the clock time
    for &t in clock {
        while k + 1 < s.ts.len() && s.ts[k + 1] <= t {
            k += 1;
        }
        if s.ts[k] == t {
            out.push(b.open[k], b.high[k], b.low[k], b.close[k], b.volume[k], b.tradable[k]);
        } else {
            let c = b.close[k];
            out.push(c, c, c, c, 0.0, false);
        }
    }
    out
}
