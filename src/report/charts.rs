//! Charts, drawn with plotters into PNG and SVG from a folder's saved files. Text renders from
//! the DejaVu Sans font the crate embeds (no system font needed). Long series are downsampled
//! for display only, keeping each pixel column's minimum and maximum so spikes survive.

use super::view::{RunView, Table};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

type Res = std::result::Result<(), String>;
/// A labelled, coloured line.
type Series = (String, Vec<(i64, f64)>, RGBColor);

const FONT: &[u8] = include_bytes!("font/DejaVuSans.ttf");
/// Series colours (the "tab10" palette).
pub const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];
const WIDE: (u32, u32) = (1100, 480);
/// Points per series after downsampling (about two per pixel column).
const POINTS: usize = 2200;

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The font is the crate's own bytes: a failure here is a build defect.
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| ()).expect("embedded font parses");
    });
}

fn e<E: std::fmt::Display>(x: E) -> String {
    x.to_string()
}

/// Draw `f` into `dir/name.png` and `dir/name.svg`.
macro_rules! both {
    ($dir:expr, $name:expr, $size:expr, $f:expr) => {{
        register_font();
        let png = $dir.join(format!("{}.png", $name));
        {
            let root = BitMapBackend::new(&png, $size).into_drawing_area();
            root.fill(&WHITE).map_err(e)?;
            $f(&root)?;
            root.present().map_err(|x| format!("{}: {x}", png.display()))?;
        }
        let svg = $dir.join(format!("{}.svg", $name));
        {
            let root = SVGBackend::new(&svg, $size).into_drawing_area();
            root.fill(&WHITE).map_err(e)?;
            $f(&root)?;
            root.present().map_err(|x| format!("{}: {x}", svg.display()))?;
        }
        Ok::<(), String>(())
    }};
}

/// Keep each bucket's first, minimum and maximum points, in time order (display only).
pub fn minmax(ts: &[i64], ys: &[f64], buckets: usize) -> Vec<(i64, f64)> {
    let n = ts.len().min(ys.len());
    if n <= 2 * buckets.max(1) {
        return (0..n).filter(|&i| ys[i].is_finite()).map(|i| (ts[i], ys[i])).collect();
    }
    let mut out = Vec::with_capacity(3 * buckets + 1);
    for b in 0..buckets {
        let (lo, hi) = (b * n / buckets, ((b + 1) * n / buckets).max(b * n / buckets + 1));
        let (mut imin, mut imax) = (usize::MAX, usize::MAX);
        for i in lo..hi {
            if !ys[i].is_finite() {
                continue;
            }
            if imin == usize::MAX || ys[i] < ys[imin] {
                imin = i;
            }
            if imax == usize::MAX || ys[i] > ys[imax] {
                imax = i;
            }
        }
        if imin == usize::MAX {
            continue;
        }
        let mut idx = [lo, imin, imax];
        idx.sort_unstable();
        for (k, &i) in idx.iter().enumerate() {
            if ys[i].is_finite() && (k == 0 || i != idx[k - 1]) {
                out.push((ts[i], ys[i]));
            }
        }
    }
    if ys[n - 1].is_finite() {
        out.push((ts[n - 1], ys[n - 1]));
    }
    out
}

fn range(ys: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for y in ys.filter(|y| y.is_finite()) {
        lo = lo.min(y);
        hi = hi.max(y);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.05).max(hi.abs() * 1e-6).max(1e-12);
    (lo - pad, hi + pad)
}

/// Date labels fitted to the span.
fn date_label(span_ms: i64) -> impl Fn(&i64) -> String {
    let fmt = if span_ms > 700 * 86_400_000 {
        "%Y-%m"
    } else if span_ms > 20 * 86_400_000 {
        "%Y-%m-%d"
    } else {
        "%m-%d %H:%M"
    };
    move |x: &i64| chrono::DateTime::from_timestamp_millis(*x).map(|d| d.format(fmt).to_string()).unwrap_or_default()
}

/// Axis numbers without needless decimals.
fn tick(v: &f64) -> String {
    let a = v.abs();
    if a < 1e-12 {
        return "0".into();
    }
    if (v - v.round()).abs() < 1e-9 * a.max(1.0) {
        return format!("{v:.0}");
    }
    if a >= 1000.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// Dense lines drawn thin: thick strokes over thousands of tiny segments break up.
fn stroke(c: RGBColor, points: usize) -> ShapeStyle {
    c.stroke_width(if points > 400 { 1 } else { 2 })
}

fn time_axis(ts: &[i64]) -> (i64, i64) {
    let (a, b) = (ts.first().copied().unwrap_or(0), ts.last().copied().unwrap_or(1));
    (a, b.max(a + 1))
}

/// Lines over time on one axis: `(label, points, colour)`.
fn lines<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, title: &str, y_desc: &str, ts: &[i64], series: &[Series], log: bool) -> Res {
    let (t0, t1) = time_axis(ts);
    let (mut lo, hi) = range(series.iter().flat_map(|s| s.1.iter().map(|p| p.1)));
    let fmt = date_label(t1 - t0);
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 20)).margin(12).x_label_area_size(36).y_label_area_size(80);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_labels(8)
                .y_labels(8)
                .x_label_formatter(&fmt)
                .y_label_formatter(&tick)
                .x_desc("time (UTC)")
                .y_desc(y_desc)
                .max_light_lines(1)
                .light_line_style(RGBColor(240, 240, 240))
                .draw()
                .map_err(e)?;
            for (label, pts, c) in series {
                let c = *c;
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), stroke(c, pts.len())))
                    .map_err(e)?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            }
            if series.len() > 1 {
                chart
                    .configure_series_labels()
                    .background_style(WHITE.mix(0.85))
                    .border_style(RGBColor(200, 200, 200))
                    .position(SeriesLabelPosition::UpperLeft)
                    .label_font(("sans-serif", 14))
                    .draw()
                    .map_err(e)?;
            }
        }};
    }
    if log {
        lo = lo.max(hi * 1e-6).max(f64::MIN_POSITIVE);
        body!(b.build_cartesian_2d(t0..t1, (lo..hi).log_scale()).map_err(e)?);
    } else {
        body!(b.build_cartesian_2d(t0..t1, lo..hi).map_err(e)?);
    }
    Ok(())
}

/// Every chart of a run into `dir`; returns the chart names written (without extension).
pub fn run_charts(dir: &Path, v: &RunView) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let ts = &v.ts;
    let eq = minmax(ts, &v.equity, POINTS);
    let bh = minmax(ts, &v.buy_and_hold(), POINTS);
    let series = vec![("strategy".to_string(), eq, PALETTE[0]), ("buy & hold (equal weight)".to_string(), bh, PALETTE[7])];
    both!(dir, "equity", WIDE, |r| lines(r, "Equity vs buy & hold", "equity (quote currency)", ts, &series, false))?;
    both!(dir, "equity_log", WIDE, |r| lines(r, "Equity vs buy & hold (log scale)", "equity (quote currency)", ts, &series, true))?;
    names.extend(["equity".to_string(), "equity_log".to_string()]);

    let dd: Vec<f64> = v.drawdown.iter().map(|d| -100.0 * d).collect();
    both!(dir, "drawdown", (1100, 320), |r| drawdown(r, ts, &dd))?;
    names.push("drawdown".into());

    for s in 0..v.symbols.len().min(4) {
        let name = format!("price_{}", safe(&v.symbols[s]));
        both!(dir, &name, WIDE, |r| price(r, v, s))?;
        names.push(name);
    }
    let months = monthly_returns(ts, &v.equity, v.initial());
    let years = months.len().max(1) as u32;
    both!(dir, "monthly_returns", (1100, 110 + 34 * years), |r| heatmap(r, &months))?;
    names.push("monthly_returns".into());
    both!(dir, "rolling", (1100, 560), |r| rolling(r, v))?;
    names.push("rolling".into());
    both!(dir, "trade_returns", (1100, 400), |r| histogram(r, &v.trade_returns))?;
    names.push("trade_returns".into());
    let h = if v.targets.is_empty() { 420 } else { 780 };
    both!(dir, "weights", (1100, h), |r| weights(r, v))?;
    names.push("weights".into());
    Ok(names)
}

/// A file-name-safe version of a symbol.
pub fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

fn drawdown<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, ts: &[i64], dd: &[f64]) -> Res {
    let (t0, t1) = time_axis(ts);
    let lo = dd.iter().copied().filter(|x| x.is_finite()).fold(0.0f64, f64::min).min(-0.01) * 1.05;
    let fmt = date_label(t1 - t0);
    let mut chart = ChartBuilder::on(root)
        .caption("Drawdown (underwater)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(t0..t1, lo..0.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&fmt)
        .y_label_formatter(&tick)
        .x_desc("time (UTC)")
        .y_desc("drawdown (%)")
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    let c = PALETTE[3];
    chart.draw_series(AreaSeries::new(minmax(ts, dd, POINTS), 0.0, c.mix(0.3)).border_style(c)).map_err(e)?;
    Ok(())
}

fn regime_color(name: &str) -> RGBColor {
    match name {
        "bull" => RGBColor(44, 160, 44),
        "bear" => RGBColor(214, 39, 40),
        "high_vol" => RGBColor(255, 127, 14),
        _ => RGBColor(127, 127, 127),
    }
}

fn price<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, v: &RunView, s: usize) -> Res {
    let ts = &v.ts;
    let (t0, t1) = time_axis(ts);
    let (lo, hi) = range(v.prices[s].iter().copied());
    let fmt = date_label(t1 - t0);
    let title = if v.regimes.is_empty() {
        format!("{}: price, entries and exits", v.symbols[s])
    } else {
        format!("{}: price, fills, regimes shaded (green bull, red bear, grey sideways, orange high vol)", v.symbols[s])
    };
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(t0..t1, lo..hi)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&fmt)
        .y_label_formatter(&tick)
        .x_desc("time (UTC)")
        .y_desc("close (quote currency)")
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    if !v.regimes.is_empty() {
        let mut start = 0;
        let mut shades = Vec::new();
        for t in 1..=v.regimes.len() {
            if t == v.regimes.len() || v.regimes[t] != v.regimes[start] {
                let end = ts[t.min(ts.len() - 1)];
                shades.push(Rectangle::new([(ts[start], lo), (end, hi)], regime_color(&v.regimes[start]).mix(0.12).filled()));
                start = t;
            }
        }
        chart.draw_series(shades).map_err(e)?;
    }
    let c = PALETTE[0];
    chart
        .draw_series(LineSeries::new(minmax(ts, &v.prices[s], POINTS), c.stroke_width(1)))
        .map_err(e)?
        .label("close")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    let fills: Vec<_> = v.fills.iter().filter(|f| f.sym == s).collect();
    let stop = |r: &str| matches!(r, "stop_loss" | "take_profit" | "trailing_stop" | "halt");
    let green = RGBColor(0, 140, 0);
    chart
        .draw_series(fills.iter().filter(|f| f.buy && !stop(&f.reason)).map(|f| TriangleMarker::new((f.ts, f.price), 5, green.filled())))
        .map_err(e)?
        .label("buy")
        .legend(move |(x, y)| TriangleMarker::new((x + 9, y), 5, green.filled()));
    let red = RGBColor(200, 0, 0);
    chart
        .draw_series(fills.iter().filter(|f| !f.buy && !stop(&f.reason)).map(|f| Circle::new((f.ts, f.price), 4, red.filled())))
        .map_err(e)?
        .label("sell")
        .legend(move |(x, y)| Circle::new((x + 9, y), 4, red.filled()));
    chart
        .draw_series(fills.iter().filter(|f| stop(&f.reason)).map(|f| Cross::new((f.ts, f.price), 6, BLACK.stroke_width(2))))
        .map_err(e)?
        .label("stop / take-profit / halt")
        .legend(move |(x, y)| Cross::new((x + 9, y), 6, BLACK.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Monthly returns: per year, 12 months (NaN where the run has no bars) and the year's total.
pub fn monthly_returns(ts: &[i64], equity: &[f64], initial: f64) -> Vec<(i32, [f64; 12], f64)> {
    use chrono::Datelike;
    let mut out: Vec<(i32, [f64; 12], f64)> = Vec::new();
    let mut prev = initial;
    let mut year_start = initial;
    for t in 0..ts.len() {
        let d = chrono::DateTime::from_timestamp_millis(ts[t]).map(|d| d.date_naive()).unwrap_or_default();
        let (y, m) = (d.year(), d.month0() as usize);
        let last_of_month = t + 1 == ts.len() || {
            let n = chrono::DateTime::from_timestamp_millis(ts[t + 1]).map(|d| d.date_naive()).unwrap_or_default();
            n.year() != y || n.month0() as usize != m
        };
        if out.last().is_none_or(|r| r.0 != y) {
            out.push((y, [f64::NAN; 12], f64::NAN));
            year_start = prev;
        }
        if last_of_month {
            let row = out.last_mut().expect("pushed");
            row.1[m] = equity[t] / prev - 1.0;
            row.2 = equity[t] / year_start - 1.0;
            prev = equity[t];
        }
    }
    out
}

fn heat_color(r: f64, scale: f64) -> RGBColor {
    if !r.is_finite() {
        return RGBColor(245, 245, 245);
    }
    let x = (r / scale).clamp(-1.0, 1.0);
    let mix = |a: u8, b: u8, k: f64| (a as f64 + (b as f64 - a as f64) * k).round() as u8;
    if x >= 0.0 {
        RGBColor(mix(255, 26, x), mix(255, 150, x), mix(255, 65, x))
    } else {
        RGBColor(mix(255, 215, -x), mix(255, 48, -x), mix(255, 39, -x))
    }
}

fn heatmap<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, months: &[(i32, [f64; 12], f64)]) -> Res {
    let ny = months.len().max(1) as f64;
    let scale = months.iter().flat_map(|m| m.1.iter()).copied().filter(|x| x.is_finite()).map(f64::abs).fold(0.01, f64::max);
    let mut chart = ChartBuilder::on(root)
        .caption("Monthly returns (%), with the year's total", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(10)
        .y_label_area_size(10)
        .build_cartesian_2d(-1.2f64..13.0, ny..-0.9)
        .map_err(e)?;
    const NAMES: [&str; 13] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Year"];
    let text = |s: String, x: f64, y: f64| Text::new(s, (x, y), ("sans-serif", 14).into_font().color(&BLACK));
    let mut cells = Vec::new();
    let mut labels = Vec::new();
    for (k, n) in NAMES.iter().enumerate() {
        labels.push(text(n.to_string(), k as f64 + 0.3, -0.7));
    }
    for (row, (year, m, total)) in months.iter().enumerate() {
        let y = row as f64;
        labels.push(text(year.to_string(), -1.1, y + 0.3));
        for (k, r) in m.iter().chain(std::iter::once(total)).enumerate() {
            let x = k as f64;
            let s = if k == 12 { 2.0 * scale } else { scale };
            cells.push(Rectangle::new([(x + 0.03, y + 0.05), (x + 0.97, y + 0.95)], heat_color(*r, s).filled()));
            if r.is_finite() {
                labels.push(text(format!("{:.1}", 100.0 * r), x + 0.2, y + 0.3));
            }
        }
    }
    chart.draw_series(cells).map_err(e)?;
    chart.draw_series(labels).map_err(e)?;
    Ok(())
}

/// Rolling annualized Sharpe ratio and volatility over `w` bars.
pub fn rolling_stats(equity: &[f64], initial: f64, w: usize, per_year: f64) -> (Vec<f64>, Vec<f64>) {
    let n = equity.len();
    let r: Vec<f64> = (0..n).map(|t| equity[t] / if t == 0 { initial } else { equity[t - 1] } - 1.0).collect();
    let (mut s, mut s2) = (0.0, 0.0);
    let (mut sharpe, mut vol) = (vec![f64::NAN; n], vec![f64::NAN; n]);
    for t in 0..n {
        s += r[t];
        s2 += r[t] * r[t];
        if t >= w {
            s -= r[t - w];
            s2 -= r[t - w] * r[t - w];
        }
        if t + 1 >= w && w > 1 {
            let k = w as f64;
            let sd = ((s2 - s * s / k) / (k - 1.0)).max(0.0).sqrt();
            vol[t] = sd * per_year.sqrt();
            sharpe[t] = if sd > 0.0 { s / k / sd * per_year.sqrt() } else { f64::NAN };
        }
    }
    (sharpe, vol)
}

fn rolling<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, v: &RunView) -> Res {
    let per_day = v.per_year() / 365.0;
    let w = ((30.0 * per_day).round() as usize).clamp(10, v.ts.len().max(11) - 1);
    let (sh, vol) = rolling_stats(&v.equity, v.initial(), w, v.per_year());
    let vol: Vec<f64> = vol.iter().map(|x| 100.0 * x).collect();
    let (top, bottom) = root.split_vertically(280);
    let days = (w as f64 / per_day).round();
    lines(
        &top,
        &format!("Rolling Sharpe ratio ({days} days)"),
        "Sharpe (annualized)",
        &v.ts,
        &[("".into(), minmax(&v.ts, &sh, POINTS), PALETTE[0])],
        false,
    )?;
    lines(
        &bottom,
        &format!("Rolling volatility ({days} days)"),
        "volatility (% annualized)",
        &v.ts,
        &[("".into(), minmax(&v.ts, &vol, POINTS), PALETTE[1])],
        false,
    )
}

fn histogram<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, rets: &[f64]) -> Res {
    let xs: Vec<f64> = rets.iter().map(|r| 100.0 * r).collect();
    let (lo, hi) = if xs.is_empty() { (-1.0, 1.0) } else { range(xs.iter().copied()) };
    let bins = 30usize;
    let wdt = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for x in &xs {
        counts[(((x - lo) / wdt) as usize).min(bins - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(0).max(1) as f64 * 1.1;
    let title = format!("Closed trades: net return distribution ({} trades)", xs.len());
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(lo..hi, 0.0..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("trade return (%)")
        .y_desc("trades")
        .x_label_formatter(&tick)
        .y_label_formatter(&|v| format!("{v:.0}"))
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, c)| {
            let x0 = lo + i as f64 * wdt;
            let col = if x0 + wdt / 2.0 >= 0.0 { PALETTE[2] } else { PALETTE[3] };
            Rectangle::new([(x0, 0.0), (x0 + wdt * 0.95, *c as f64)], col.mix(0.8).filled())
        }))
        .map_err(e)?;
    Ok(())
}

fn weights<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, v: &RunView) -> Res {
    let ts = &v.ts;
    let n = ts.len();
    let (t0, t1) = time_axis(ts);
    let fmt = date_label(t1 - t0);
    let step = (n / POINTS).max(1);
    let idx: Vec<usize> = (0..n).step_by(step).chain(std::iter::once(n.saturating_sub(1))).collect();
    let (area, rest) = if v.targets.is_empty() {
        (root.clone(), None)
    } else {
        let (a, b) = root.split_vertically(400);
        (a, Some(b))
    };
    let top = idx.iter().map(|&t| v.weights.iter().map(|w| w[t].max(0.0)).sum::<f64>()).fold(1.0f64, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(&area)
        .caption("Portfolio weights (stacked; the rest is cash)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(t0..t1, 0.0..top)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&fmt)
        .y_label_formatter(&tick)
        .x_desc("time (UTC)")
        .y_desc("weight")
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    // Stacked: the running sum up to each symbol, drawn largest first.
    for s in (0..v.symbols.len()).rev() {
        let c = PALETTE[s % PALETTE.len()];
        let pts: Vec<(i64, f64)> = idx.iter().map(|&t| (ts[t], (0..=s).map(|k| v.weights[k][t].max(0.0)).sum())).collect();
        chart
            .draw_series(AreaSeries::new(pts, 0.0, c.mix(0.75)).border_style(c))
            .map_err(e)?
            .label(v.symbols[s].as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    let Some(rest) = rest else { return Ok(()) };
    let band = v.band.unwrap_or(0.0);
    let hi = idx.iter().flat_map(|&t| v.weights.iter().chain(&v.targets).map(move |w| w[t])).fold(0.0f64, f64::max) + band + 0.05;
    let title =
        if band > 0.0 { format!("Weights against targets (dashed) and +-{band} bands") } else { "Weights against targets (dashed)".into() };
    let mut chart = ChartBuilder::on(&rest)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(t0..t1, 0.0..hi)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_labels(8)
        .x_label_formatter(&fmt)
        .y_label_formatter(&tick)
        .x_desc("time (UTC)")
        .y_desc("weight")
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    for s in 0..v.symbols.len() {
        let c = PALETTE[s % PALETTE.len()];
        if band > 0.0 {
            let upper = idx.iter().map(|&t| (ts[t], v.targets[s][t] + band));
            let lower: Vec<(i64, f64)> = idx.iter().rev().map(|&t| (ts[t], (v.targets[s][t] - band).max(0.0))).collect();
            chart.draw_series(std::iter::once(Polygon::new(upper.chain(lower).collect::<Vec<_>>(), c.mix(0.12)))).map_err(e)?;
        }
        chart.draw_series(LineSeries::new(minmax(ts, &v.weights[s], POINTS), c.stroke_width(1))).map_err(e)?;
        chart.draw_series(DashedLineSeries::new(idx.iter().map(|&t| (ts[t], v.targets[s][t])), 6, 4, c.stroke_width(2))).map_err(e)?;
    }
    Ok(())
}

/// Charts of an optimization folder (`trials.csv`, `optimize.json`, `top_equity.csv`).
/// The trials that ran, as numbers: parameters (choices by order of appearance), objective, and
/// the best feasible objective so far.
pub struct TrialSeries {
    /// Parameter paths.
    pub params: Vec<String>,
    /// Each parameter's value per trial.
    pub cols: Vec<Vec<f64>>,
    /// Objective per trial.
    pub obj: Vec<f64>,
    /// Best feasible objective up to each trial (NaN before the first feasible one).
    pub best: Vec<f64>,
}

/// Read the trials of `trials.csv`.
pub fn trial_series(trials: &Table, maximize: bool) -> Result<TrialSeries, String> {
    let st = trials.col("status").ok_or("trials.csv has no status column")?;
    let params: Vec<String> = trials.names[1..st].to_vec();
    let ok: Vec<&Vec<String>> = trials.rows.iter().filter(|r| r[st] == "ok").collect();
    let oc = trials.col("objective").ok_or("trials.csv has no objective column")?;
    let fc = trials.col("feasible");
    let obj: Vec<f64> = ok.iter().map(|r| r[oc].parse().unwrap_or(f64::NAN)).collect();
    let feasible: Vec<bool> = ok.iter().map(|r| fc.is_none_or(|c| r[c] == "true")).collect();
    let better = |a: f64, b: f64| if maximize { a > b } else { a < b };
    let mut best = Vec::new();
    let mut cur = f64::NAN;
    for (i, o) in obj.iter().enumerate() {
        if feasible[i] && o.is_finite() && (cur.is_nan() || better(*o, cur)) {
            cur = *o;
        }
        best.push(cur);
    }
    let cols: Vec<Vec<f64>> = (0..params.len())
        .map(|p| {
            let mut seen: Vec<String> = Vec::new();
            ok.iter()
                .map(|r| {
                    let s = &r[1 + p];
                    s.parse::<f64>().unwrap_or_else(|_| {
                        let i = seen.iter().position(|x| x == s).unwrap_or_else(|| {
                            seen.push(s.clone());
                            seen.len() - 1
                        });
                        i as f64
                    })
                })
                .collect()
        })
        .collect();
    Ok(TrialSeries { params, cols, obj, best })
}

/// Charts of an optimization folder; `map` names the two parameters of the objective map (the
/// first two by default).
pub fn optimize_charts(
    dir: &Path,
    trials: &Table,
    maximize: bool,
    top: Option<&Table>,
    map: Option<(&str, &str)>,
) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let TrialSeries { params, cols, obj, best } = trial_series(trials, maximize)?;
    both!(dir, "convergence", (1100, 420), |r| convergence(r, &obj, &best))?;
    names.push("convergence".into());
    let axes = match map {
        Some((a, b)) => {
            let find = |n: &str| {
                params.iter().position(|p| p == n).ok_or_else(|| format!("--map: no parameter {n} (the search has {})", params.join(", ")))
            };
            Some((find(a)?, find(b)?))
        }
        None => (params.len() >= 2).then_some((0, 1)),
    };
    if let Some((i, j)) = axes {
        let (p2, c2) = ([params[i].clone(), params[j].clone()], [cols[i].clone(), cols[j].clone()]);
        both!(dir, "param_map", (900, 700), |r| param_map(r, &p2, &c2, &obj))?;
        names.push("param_map".into());
    }
    if !params.is_empty() {
        let k = params.len().min(6);
        let rows = k.div_ceil(2) as u32;
        both!(dir, "params", (1100, 60 + 300 * rows), |r| param_panels(r, &params[..k], &cols, &obj))?;
        names.push("params".into());
    }
    if let Some(t) = top {
        let ts = t.times("timestamp").map_err(e)?;
        let series: Vec<Series> = t.names[1..]
            .iter()
            .enumerate()
            .map(|(i, n)| Ok((n.replace('_', " "), minmax(&ts, &t.f64s(n).map_err(e)?, POINTS), PALETTE[i % PALETTE.len()])))
            .collect::<Result<_, String>>()?;
        both!(dir, "top_equity", WIDE, |r| lines(r, "Equity of the top trials", "equity (quote currency)", &ts, &series, false))?;
        names.push("top_equity".into());
    }
    Ok(names)
}

fn convergence<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, obj: &[f64], best: &[f64]) -> Res {
    let n = obj.len().max(2) as f64;
    let (lo, hi) = range(obj.iter().chain(best).copied());
    let mut chart = ChartBuilder::on(root)
        .caption("Objective by evaluation, and the best so far (feasible trials)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n, lo..hi)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("evaluation")
        .y_desc("objective")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&tick)
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    let c = PALETTE[7];
    chart
        .draw_series(obj.iter().enumerate().filter(|(_, o)| o.is_finite()).map(|(i, o)| Circle::new((i as f64 + 1.0, *o), 3, c.filled())))
        .map_err(e)?
        .label("trial")
        .legend(move |(x, y)| Circle::new((x + 9, y), 3, c.filled()));
    let b = PALETTE[0];
    chart
        .draw_series(LineSeries::new(
            best.iter().enumerate().filter(|(_, o)| o.is_finite()).map(|(i, o)| (i as f64 + 1.0, *o)),
            b.stroke_width(2),
        ))
        .map_err(e)?
        .label("best so far")
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], b.stroke_width(2)));
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Purple (low) through teal to yellow (high), as viridis.
fn ramp(x: f64) -> RGBColor {
    let x = if x.is_finite() { x.clamp(0.0, 1.0) } else { 0.0 };
    let (a, b, k) = if x < 0.5 {
        ((68.0, 1.0, 84.0), (33.0, 145.0, 140.0), 2.0 * x)
    } else {
        ((33.0, 145.0, 140.0), (253.0, 231.0, 37.0), 2.0 * x - 1.0)
    };
    let lerp = |p: f64, q: f64| (p + (q - p) * k).round() as u8;
    RGBColor(lerp(a.0, b.0), lerp(a.1, b.1), lerp(a.2, b.2))
}

fn param_map<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, params: &[String], cols: &[Vec<f64>], obj: &[f64]) -> Res {
    let (x0, x1) = range(cols[0].iter().copied());
    let (y0, y1) = range(cols[1].iter().copied());
    let (o0, o1) = range(obj.iter().copied());
    let mut chart = ChartBuilder::on(root)
        .caption(format!("Objective over {} and {} (purple low, yellow high)", params[0], params[1]), ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(params[0].as_str())
        .y_desc(params[1].as_str())
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    let mut order: Vec<usize> = (0..obj.len()).collect();
    // Best drawn last so they stay visible.
    order.sort_by(|a, b| obj[*a].total_cmp(&obj[*b]));
    chart
        .draw_series(order.iter().map(|&i| Circle::new((cols[0][i], cols[1][i]), 6, ramp((obj[i] - o0) / (o1 - o0)).filled())))
        .map_err(e)?;
    Ok(())
}

fn param_panels<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, params: &[String], cols: &[Vec<f64>], obj: &[f64]) -> Res {
    let (title, body) = root.split_vertically(50);
    title.titled("Each parameter against the objective", ("sans-serif", 20)).map_err(e)?;
    let rows = params.len().div_ceil(2);
    let panels = body.split_evenly((rows, 2));
    let (o0, o1) = range(obj.iter().copied());
    for (k, p) in params.iter().enumerate() {
        let (x0, x1) = range(cols[k].iter().copied());
        let mut chart = ChartBuilder::on(&panels[k])
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(70)
            .build_cartesian_2d(x0..x1, o0..o1)
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(p.as_str())
            .y_desc("objective")
            .max_light_lines(1)
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(e)?;
        chart.draw_series((0..obj.len()).map(|i| Circle::new((cols[k][i], obj[i]), 3, PALETTE[0].mix(0.7).filled()))).map_err(e)?;
    }
    Ok(())
}

/// Charts of a walk-forward folder.
pub fn walk_charts(dir: &Path, windows: &Table, oos: &Table) -> Result<Vec<String>, String> {
    let ins = windows.f64s("in_sample").map_err(e)?;
    let outs = windows.f64s("out_of_sample").map_err(e)?;
    let defs = windows.f64s("default_out_of_sample").map_err(e)?;
    both!(dir, "walk_forward", (1100, 420), |r| grouped(r, &ins, &outs, &defs))?;
    let ts = oos.times("timestamp").map_err(e)?;
    let series = vec![
        ("optimized per window".to_string(), minmax(&ts, &oos.f64s("optimized").map_err(e)?, POINTS), PALETTE[0]),
        ("experiment's own parameters".to_string(), minmax(&ts, &oos.f64s("default").map_err(e)?, POINTS), PALETTE[7]),
    ];
    both!(dir, "oos_equity", WIDE, |r| lines(r, "Stitched out-of-sample equity", "equity (quote currency)", &ts, &series, false))?;
    Ok(vec!["walk_forward".into(), "oos_equity".into()])
}

fn grouped<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, ins: &[f64], outs: &[f64], defs: &[f64]) -> Res {
    let n = ins.len().max(1) as f64;
    let (lo, hi) = range(ins.iter().chain(outs).chain(defs).copied().chain([0.0]));
    // Head room for the legend.
    let hi = hi + 0.4 * (hi - lo);
    let mut chart = ChartBuilder::on(root)
        .caption("Objective per window: in sample vs out of sample", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5..n - 0.5, lo..hi)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_labels(ins.len().max(2))
        .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-9 { format!("window {}", x.round()) } else { String::new() })
        .y_desc("objective")
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    for (k, (label, vals)) in
        [("in sample (optimized)", ins), ("out of sample (optimized)", outs), ("out of sample (experiment's own)", defs)]
            .into_iter()
            .enumerate()
    {
        let c = [PALETTE[7], PALETTE[0], PALETTE[1]][k];
        let off = -0.3 + 0.2 * k as f64;
        chart
            .draw_series(vals.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(i, v)| {
                let x = i as f64 + off;
                Rectangle::new([(x, 0.0), (x + 0.18, *v)], c.filled())
            }))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 14, y + 5)], c.filled()));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Several searches' best-so-far objective overlaid.
pub fn compare_searches(dir: &Path, runs: &[(String, TrialSeries)]) -> Result<Vec<String>, String> {
    let n = runs.iter().map(|r| r.1.obj.len()).max().unwrap_or(2).max(2) as f64;
    let (lo, hi) = range(runs.iter().flat_map(|r| r.1.best.iter().copied()));
    both!(dir, "convergence", (1100, 460), |r| searches(r, runs, n, lo, hi))?;
    Ok(vec!["convergence".into()])
}

fn searches<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[(String, TrialSeries)], n: f64, lo: f64, hi: f64) -> Res {
    let mut chart = ChartBuilder::on(root)
        .caption("Best feasible objective so far, per search", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..n, lo..hi)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("evaluation")
        .y_desc("objective")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&tick)
        .max_light_lines(1)
        .light_line_style(RGBColor(240, 240, 240))
        .draw()
        .map_err(e)?;
    for (k, (label, t)) in runs.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        let pts = t.best.iter().enumerate().filter(|(_, b)| b.is_finite()).map(|(i, b)| (i as f64 + 1.0, *b));
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(e)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)?;
    Ok(())
}

/// Several runs' equity and drawdown overlaid.
pub fn compare_charts(dir: &Path, runs: &[(String, RunView)]) -> Result<Vec<String>, String> {
    let ts: Vec<i64> = runs.iter().flat_map(|r| [r.1.ts.first().copied(), r.1.ts.last().copied()]).flatten().collect();
    let (t0, t1) = (ts.iter().copied().min().unwrap_or(0), ts.iter().copied().max().unwrap_or(1));
    let axis = [t0, t1];
    let eq: Vec<_> =
        runs.iter().enumerate().map(|(i, (n, v))| (n.clone(), minmax(&v.ts, &v.equity, POINTS), PALETTE[i % PALETTE.len()])).collect();
    both!(dir, "equity", WIDE, |r| lines(r, "Equity", "equity (quote currency)", &axis, &eq, false))?;
    let dd: Vec<_> = runs
        .iter()
        .enumerate()
        .map(|(i, (n, v))| {
            let d: Vec<f64> = v.drawdown.iter().map(|x| -100.0 * x).collect();
            (n.clone(), minmax(&v.ts, &d, POINTS), PALETTE[i % PALETTE.len()])
        })
        .collect();
    both!(dir, "drawdown", (1100, 380), |r| lines(r, "Drawdown", "drawdown (%)", &axis, &dd, false))?;
    Ok(vec!["equity".into(), "drawdown".into()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minmax_keeps_spikes() {
        let ts: Vec<i64> = (0..10_000).collect();
        let mut ys = vec![1.0; 10_000];
        ys[4321] = -50.0;
        ys[777] = 80.0;
        let d = minmax(&ts, &ys, 100);
        assert!(d.len() <= 301 && d.len() >= 100);
        assert!(d.contains(&(4321, -50.0)) && d.contains(&(777, 80.0)));
        assert!(d.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn monthly_returns_chain_month_ends() {
        // Daily bars: Jan 30 -> Feb 2 2024; equity 100, 110 (Jan 31), 121 (Feb 1), 121.
        let day = 86_400_000;
        let t0 = 1_706_572_800_000; // 2024-01-30
        let ts = [t0, t0 + day, t0 + 2 * day, t0 + 3 * day];
        let m = monthly_returns(&ts, &[100.0, 110.0, 121.0, 121.0], 100.0);
        assert_eq!(m.len(), 1);
        assert!((m[0].1[0] - 0.10).abs() < 1e-12 && (m[0].1[1] - 0.10).abs() < 1e-12);
        assert!((m[0].2 - 0.21).abs() < 1e-12);
    }
}
