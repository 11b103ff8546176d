//! The charts of optimization and walk-forward folders, and of several searches compared.

use super::*;
use crate::report::view::Table;

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
    top: Option<&crate::report::view::Curves>,
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
        let ts = &t.ts;
        let series: Vec<Series> = t
            .names
            .iter()
            .zip(&t.cols)
            .enumerate()
            .map(|(i, (n, c))| (n.replace('_', " "), minmax(ts, c, POINTS), PALETTE[i % PALETTE.len()]))
            .collect();
        both!(dir, "top_equity", WIDE, |r| lines(r, "Equity of the top trials", "equity (quote currency)", ts, &series, false))?;
        names.push("top_equity".into());
    }
    Ok(names)
}

/// Axes of objective against evaluation number.
fn evaluation_axes<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
    n: f64,
    lo: f64,
    hi: f64,
) -> Result<ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>, String> {
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 20))
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
    Ok(chart)
}

fn convergence<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, obj: &[f64], best: &[f64]) -> Res {
    let n = obj.len().max(2) as f64;
    let (lo, hi) = range(obj.iter().chain(best).copied());
    let mut chart = evaluation_axes(root, "Objective by evaluation, and the best so far (feasible trials)", n, lo, hi)?;
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
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
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
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
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
    let mut chart = evaluation_axes(root, "Best feasible objective so far, per search", n, lo, hi)?;
    for (k, (label, t)) in runs.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        let pts = t.best.iter().enumerate().filter(|(_, b)| b.is_finite()).map(|(i, b)| (i as f64 + 1.0, *b));
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(e)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}
