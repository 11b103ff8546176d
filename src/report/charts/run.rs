//! The charts of a run folder, and of several runs compared.

use super::*;
use crate::report::view::RunView;

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

fn drawdown<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, ts: &[i64], dd: &[f64]) -> Res {
    let (t0, t1) = time_axis(ts);
    let lo = dd.iter().copied().filter(|x| x.is_finite()).fold(0.0f64, f64::min).min(-0.01) * 1.05;
    let mut chart = ChartBuilder::on(root)
        .caption("Drawdown (underwater)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(80)
        .build_cartesian_2d(t0..t1, lo..0.0)
        .map_err(e)?;
    time_mesh(&mut chart, t1 - t0, "drawdown (%)")?;
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
    time_mesh(&mut chart, t1 - t0, "close (quote currency)")?;
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
    legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
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
    time_mesh(&mut chart, t1 - t0, "weight")?;
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
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
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
    time_mesh(&mut chart, t1 - t0, "weight")?;
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
