//! Charts, drawn with plotters into PNG and SVG from a folder's saved files. Text renders from
//! the DejaVu Sans font the crate embeds (no system font needed). Long series are downsampled
//! for display only, keeping each pixel column's minimum and maximum so spikes survive.

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::{RangedCoordf64, RangedCoordi64};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

type Res = std::result::Result<(), String>;
/// A labelled, coloured line.
type Series = (String, Vec<(i64, f64)>, RGBColor);

const FONT: &[u8] = include_bytes!("../font/DejaVuSans.ttf");
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

// Declared after `both!` so the chart files can use it.
mod model;
mod run;
mod search;
pub use model::model_charts;
pub use run::{compare_charts, monthly_returns, rolling_stats, run_charts};
pub use search::{compare_searches, optimize_charts, trial_series, walk_charts, TrialSeries};

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
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 20)).margin(12).x_label_area_size(36).y_label_area_size(80);
    macro_rules! body {
        ($chart:expr) => {{
            let mut chart = $chart;
            time_mesh(&mut chart, t1 - t0, y_desc)?;
            for (label, pts, c) in series {
                let c = *c;
                chart
                    .draw_series(LineSeries::new(pts.iter().copied(), stroke(c, pts.len())))
                    .map_err(e)?
                    .label(label.as_str())
                    .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
            }
            if series.len() > 1 {
                legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
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

/// The legend box, as every chart draws it.
fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(chart: &mut ChartContext<'a, DB, CT>, pos: SeriesLabelPosition) -> Res {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .position(pos)
        .label_font(("sans-serif", 14))
        .draw()
        .map_err(e)
}

/// The grid and labels of a chart over time (x: ms, y: a quantity, linear or log).
fn time_mesh<DB: DrawingBackend, Y: Ranged<ValueType = f64> + ValueFormatter<f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordi64, Y>>,
    span: i64,
    y_desc: &str,
) -> Res {
    let fmt = date_label(span);
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
        .map_err(e)
}

/// A file-name-safe version of a symbol.
pub fn safe(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
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
}
