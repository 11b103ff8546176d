//! The charts of optimization and walk-forward folders, and of several searches compared.

use super::*;
use crate::report::view::Table;

/// The trials that ran, as numbers: parameters (choices by order of appearance), objective, and
/// the best feasible objective so far. Above [`SHOW_ALL`] trials, only the trials that change
/// what the charts show are kept (see [`trial_series`]), so a search of any size draws in
/// bounded memory.
pub struct TrialSeries {
    /// Parameter paths.
    pub params: Vec<String>,
    /// Evaluation number (1-based, among the trials that ran) of each kept trial.
    pub x: Vec<f64>,
    /// Each parameter's value per kept trial.
    pub cols: Vec<Vec<f64>>,
    /// Objective per kept trial.
    pub obj: Vec<f64>,
    /// Best feasible objective up to each kept trial (NaN before the first feasible one).
    pub best: Vec<f64>,
    /// Trials that ran, kept or not.
    pub ran: usize,
}

/// Up to this many trials that ran, every one is drawn.
pub const SHOW_ALL: usize = 20_000;

/// One trial of `trials.csv` as numbers.
struct Row {
    x: f64,
    cols: Vec<f64>,
    obj: f64,
    feasible: bool,
}

/// Read `trials.csv` in two passes, one row in memory at a time. Above [`SHOW_ALL`] trials that
/// ran, a trial is kept when it is the first or last, holds a column's least or greatest value
/// (so the axes are those of every trial), improves the best so far (or precedes one that does),
/// or falls in a cell of a chart's pixel grid not yet drawn (in the objective map: or beats the
/// objective drawn in its cell); the charts then look as with every trial drawn.
pub fn trial_series(path: &Path, maximize: bool) -> Result<TrialSeries, String> {
    let open = || -> Result<csv::Reader<std::fs::File>, String> {
        csv::ReaderBuilder::new().has_headers(true).flexible(true).from_path(path).map_err(|e| e.to_string())
    };
    let mut rd = open()?;
    let names: Vec<String> = rd.headers().map_err(|e| e.to_string())?.iter().map(String::from).collect();
    let col = |n: &str| names.iter().position(|c| c == n);
    let st = col("status").ok_or("trials.csv has no status column")?;
    let oc = col("objective").ok_or("trials.csv has no objective column")?;
    let fc = col("feasible");
    let params: Vec<String> = names[1..st].to_vec();
    let d = params.len();
    // Choices are numbered by order of appearance, the same in both passes.
    let mut seen: Vec<Vec<String>> = vec![Vec::new(); d];
    let mut read = |rd: &mut csv::Reader<std::fs::File>, f: &mut dyn FnMut(Row)| -> Result<(), String> {
        let mut rec = csv::StringRecord::new();
        let mut x = 0.0;
        for s in &mut seen {
            s.clear();
        }
        loop {
            let line = rd.position().line();
            if !rd.read_record(&mut rec).map_err(|e| e.to_string())? {
                break;
            }
            if rec.len() == 1 && rec[0].is_empty() {
                continue;
            }
            if rec.len() != names.len() {
                return Err(format!("line {line}: {} fields, the header has {}", rec.len(), names.len()));
            }
            if &rec[st] != "ok" {
                continue;
            }
            x += 1.0;
            let cols = (0..d)
                .map(|p| {
                    let s = &rec[1 + p];
                    s.parse::<f64>().unwrap_or_else(|_| {
                        let i = seen[p].iter().position(|v| v == s).unwrap_or_else(|| {
                            seen[p].push(s.to_string());
                            seen[p].len() - 1
                        });
                        i as f64
                    })
                })
                .collect();
            let obj = rec[oc].parse().unwrap_or(f64::NAN);
            f(Row { x, cols, obj, feasible: fc.is_none_or(|c| &rec[c] == "true") });
        }
        Ok(())
    };
    // Pass 1: how many ran, and each column's extremes.
    let (mut ran, mut lo, mut hi) = (0usize, vec![f64::INFINITY; d + 1], vec![f64::NEG_INFINITY; d + 1]);
    read(&mut rd, &mut |r| {
        ran += 1;
        for (k, v) in r.cols.iter().chain([&r.obj]).enumerate() {
            if v.is_finite() {
                lo[k] = lo[k].min(*v);
                hi[k] = hi[k].max(*v);
            }
        }
    })?;
    let thin = ran > SHOW_ALL;
    let cell = |v: f64, k: usize, cells: f64| -> u32 {
        if !v.is_finite() {
            return u32::MAX;
        }
        let w = hi[k] - lo[k];
        if w > 0.0 {
            ((v - lo[k]) / w * cells).floor() as u32
        } else {
            0
        }
    };
    let mut out = TrialSeries { params, x: Vec::new(), cols: vec![Vec::new(); d], obj: Vec::new(), best: Vec::new(), ran };
    let push = |out: &mut TrialSeries, r: &Row, best: f64| {
        out.x.push(r.x);
        for (c, v) in out.cols.iter_mut().zip(&r.cols) {
            c.push(*v);
        }
        out.obj.push(r.obj);
        out.best.push(best);
    };
    let better = |a: f64, b: f64| if maximize { a > b } else { a < b };
    let (mut cur, mut prev): (f64, Option<(Row, f64, bool)>) = (f64::NAN, None);
    let mut extreme_seen = vec![[false; 2]; d + 1];
    let mut conv: std::collections::HashSet<(u32, u32)> = Default::default();
    let mut map: std::collections::HashMap<(u32, u32), f64> = Default::default();
    let mut panels: Vec<std::collections::HashSet<(u32, u32)>> = vec![Default::default(); d];
    // Pass 2: the kept trials.
    let mut rd = open()?;
    read(&mut rd, &mut |r| {
        let improves = r.feasible && r.obj.is_finite() && (cur.is_nan() || better(r.obj, cur));
        if improves {
            cur = r.obj;
        }
        let mut keep = !thin || r.x == 1.0 || r.x == ran as f64 || improves;
        if thin {
            for (k, v) in r.cols.iter().chain([&r.obj]).enumerate() {
                for (side, edge) in [lo[k], hi[k]].into_iter().enumerate() {
                    if *v == edge && !extreme_seen[k][side] {
                        extreme_seen[k][side] = true;
                        keep = true;
                    }
                }
            }
            let oy = cell(r.obj, d, 140.0);
            keep |= conv.insert((((r.x - 1.0) / ran as f64 * 360.0) as u32, oy));
            if d >= 2 {
                let m = map.entry((cell(r.cols[0], 0, 150.0), cell(r.cols[1], 1, 115.0))).or_insert(f64::NAN);
                if m.is_nan() || r.obj > *m {
                    *m = r.obj;
                    keep = true;
                }
            }
            for (k, p) in panels.iter_mut().enumerate() {
                keep |= p.insert((cell(r.cols[k], k, 170.0), cell(r.obj, d, 80.0)));
            }
        }
        if let Some((p, b, kept)) = prev.take() {
            // The step before an improvement, so the best-so-far line steps where it did.
            if !kept && improves {
                push(&mut out, &p, b);
            }
        }
        if keep {
            push(&mut out, &r, cur);
        }
        prev = Some((r, cur, keep));
    })?;
    Ok(out)
}

/// Charts of an optimization folder; `map` names the two parameters of the objective map (the
/// first two by default).
pub fn optimize_charts(
    dir: &Path,
    trials: TrialSeries,
    top: Option<&crate::report::view::Curves>,
    map: Option<(&str, &str)>,
) -> Result<Vec<String>, String> {
    let TrialSeries { params, x, cols, obj, best, ran } = trials;
    let axes = match map {
        Some((a, b)) => {
            let find = |n: &str| {
                params.iter().position(|p| p == n).ok_or_else(|| format!("--map: no parameter {n} (the search has {})", params.join(", ")))
            };
            Some((find(a)?, find(b)?))
        }
        None => (params.len() >= 2).then_some((0, 1)),
    };
    type Drawn = Result<Option<&'static str>, String>;
    // The charts are drawn side by side; the first failure in the order below is reported.
    let convergence = || -> Drawn {
        both!(dir, "convergence", (1100, 420), |r| convergence(r, ran, &x, &obj, &best))?;
        Ok(Some("convergence"))
    };
    let objective_map = || -> Drawn {
        let Some((i, j)) = axes else { return Ok(None) };
        let (p2, c2) = ([params[i].clone(), params[j].clone()], [cols[i].clone(), cols[j].clone()]);
        both!(dir, "param_map", (900, 700), |r| param_map(r, &p2, &c2, &obj))?;
        Ok(Some("param_map"))
    };
    let panels = || -> Drawn {
        if params.is_empty() {
            return Ok(None);
        }
        let k = params.len().min(6);
        let rows = k.div_ceil(2) as u32;
        both!(dir, "params", (1100, 60 + 300 * rows), |r| param_panels(r, &params[..k], &cols, &obj))?;
        Ok(Some("params"))
    };
    let top = || -> Drawn {
        let Some(t) = top else { return Ok(None) };
        let ts = &t.ts;
        let series: Vec<Series> = t
            .names
            .iter()
            .zip(&t.cols)
            .enumerate()
            .map(|(i, (n, c))| (n.replace('_', " "), minmax(ts, c, POINTS), PALETTE[i % PALETTE.len()]))
            .collect();
        both!(dir, "top_equity", WIDE, |r| lines(r, "Equity of the top trials", "equity (quote currency)", ts, &series, false))?;
        Ok(Some("top_equity"))
    };
    let ((a, b), (c, d)) = rayon::join(|| rayon::join(convergence, objective_map), || rayon::join(panels, top));
    let mut names = Vec::new();
    for drawn in [a, b, c, d] {
        names.extend(drawn?.map(String::from));
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

fn convergence<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, ran: usize, x: &[f64], obj: &[f64], best: &[f64]) -> Res {
    let n = ran.max(2) as f64;
    let (lo, hi) = range(obj.iter().chain(best).copied());
    let mut chart = evaluation_axes(root, "Objective by evaluation, and the best so far (feasible trials)", n, lo, hi)?;
    let c = PALETTE[7];
    chart
        .draw_series(x.iter().zip(obj).filter(|(_, o)| o.is_finite()).map(|(i, o)| Circle::new((*i, *o), 3, c.filled())))
        .map_err(e)?
        .label("trial")
        .legend(move |(x, y)| Circle::new((x + 9, y), 3, c.filled()));
    let b = PALETTE[0];
    chart
        .draw_series(LineSeries::new(x.iter().zip(best).filter(|(_, o)| o.is_finite()).map(|(i, o)| (*i, *o)), b.stroke_width(2)))
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
    let n = runs.iter().map(|r| r.1.ran).max().unwrap_or(2).max(2) as f64;
    let (lo, hi) = range(runs.iter().flat_map(|r| r.1.best.iter().copied()));
    both!(dir, "convergence", (1100, 460), |r| searches(r, runs, n, lo, hi))?;
    Ok(vec!["convergence".into()])
}

fn searches<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, runs: &[(String, TrialSeries)], n: f64, lo: f64, hi: f64) -> Res {
    let mut chart = evaluation_axes(root, "Best feasible objective so far, per search", n, lo, hi)?;
    for (k, (label, t)) in runs.iter().enumerate() {
        let c = PALETTE[k % PALETTE.len()];
        let pts = t.x.iter().zip(&t.best).filter(|(_, b)| b.is_finite()).map(|(i, b)| (*i, *b));
        chart
            .draw_series(LineSeries::new(pts, c.stroke_width(2)))
            .map_err(e)?
            .label(label.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// 200,000 trials of two parameters (one a choice) with a noisy objective, every tenth
    /// infeasible and every hundredth not run, written as `trials.csv`; returns the rows that ran
    /// as (x, a, b as its choice number, objective, feasible).
    fn write_trials(path: &Path) -> Vec<(f64, f64, f64, f64, bool)> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut w = csv::Writer::from_path(path).unwrap();
        w.write_record(["trial", "a", "b", "status", "objective", "feasible"]).unwrap();
        let mut ran = Vec::new();
        for i in 0..200_000 {
            let a: f64 = rng.gen_range(0.0..10.0);
            let b = ["x", "y", "z"][rng.gen_range(0..3)];
            let obj = (a - 5.0).abs() * -0.1 + rng.gen_range(-0.05..0.05) + i as f64 * 1e-6;
            let (status, feasible) = (if i % 100 == 7 { "invalid" } else { "ok" }, i % 10 != 3);
            w.write_record([i.to_string(), a.to_string(), b.into(), status.into(), obj.to_string(), feasible.to_string()]).unwrap();
            if status == "ok" {
                // Choices are numbered by first appearance.
                ran.push((ran.len() as f64 + 1.0, a, b, obj, feasible));
            }
        }
        w.flush().unwrap();
        let mut order: Vec<&str> = Vec::new();
        ran.into_iter()
            .map(|(x, a, b, o, f)| {
                if !order.contains(&b) {
                    order.push(b);
                }
                (x, a, order.iter().position(|c| *c == b).unwrap() as f64, o, f)
            })
            .collect()
    }

    #[test]
    fn a_large_search_draws_from_a_thinned_series_with_the_same_axes_best_line_and_cells() {
        let dir = std::env::temp_dir().join(format!("tradelab-thin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trials.csv");
        let all = write_trials(&path);
        let t = trial_series(&path, true).unwrap();
        assert_eq!(t.ran, all.len());
        assert!(t.obj.len() < all.len() / 3, "kept {} of {}", t.obj.len(), all.len());
        // The axes: each column's extremes are among the kept trials.
        let ext = |v: &mut dyn Iterator<Item = f64>| v.fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| (l.min(x), h.max(x)));
        assert_eq!(ext(&mut all.iter().map(|r| r.1)), ext(&mut t.cols[0].iter().copied()));
        assert_eq!(ext(&mut all.iter().map(|r| r.2)), ext(&mut t.cols[1].iter().copied()));
        assert_eq!(ext(&mut all.iter().map(|r| r.3)), ext(&mut t.obj.iter().copied()));
        // The best so far, worked out over every trial, at each kept trial and at every change.
        let mut best = f64::NAN;
        let mut full = Vec::new();
        for r in &all {
            if r.4 && (best.is_nan() || r.3 > best) {
                best = r.3;
            }
            full.push(best);
        }
        for (x, b) in t.x.iter().zip(&t.best) {
            assert_eq!(full[*x as usize - 1].to_bits(), b.to_bits(), "best so far at trial {x}");
        }
        for i in 1..full.len() {
            if full[i] != full[i - 1] && !full[i - 1].is_nan() {
                assert!(t.x.contains(&(i as f64)) && t.x.contains(&(i as f64 + 1.0)), "the step at trial {}", i + 1);
            }
        }
        // Every occupied cell of the map shows its best objective.
        let (lo, hi) = (ext(&mut all.iter().map(|r| r.1)), ext(&mut all.iter().map(|r| r.3)));
        let _ = hi;
        let cell = |a: f64, b: f64| (((a - lo.0) / (lo.1 - lo.0) * 150.0).floor() as u32, ((b - 0.0) / 2.0 * 115.0).floor() as u32);
        let mut want: std::collections::HashMap<(u32, u32), f64> = Default::default();
        for r in &all {
            let m = want.entry(cell(r.1, r.2)).or_insert(f64::NEG_INFINITY);
            *m = m.max(r.3);
        }
        let mut got: std::collections::HashMap<(u32, u32), f64> = Default::default();
        for i in 0..t.obj.len() {
            let m = got.entry(cell(t.cols[0][i], t.cols[1][i])).or_insert(f64::NEG_INFINITY);
            *m = m.max(t.obj[i]);
        }
        assert_eq!(want, got);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_small_search_keeps_every_trial_that_ran() {
        let dir = std::env::temp_dir().join(format!("tradelab-small-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("trials.csv");
        std::fs::write(
            &path,
            "trial,a,status,objective,feasible\n0,1,ok,0.5,true\n1,2,rule,NaN,false\n2,3,ok,0.2,true\n3,4,ok,0.9,false\n",
        )
        .unwrap();
        let t = trial_series(&path, true).unwrap();
        assert_eq!(
            (t.ran, t.x.clone(), t.cols[0].clone(), t.obj.clone()),
            (3, vec![1.0, 2.0, 3.0], vec![1.0, 3.0, 4.0], vec![0.5, 0.2, 0.9])
        );
        assert_eq!(t.best, vec![0.5, 0.5, 0.5]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
