//! The charts of `[[signals.models]]`, from a run folder's `model.json`: out-of-sample AUC and
//! accuracy per refit, the calibration curve, and feature importances.

use super::*;

/// Every model chart into `dir` from `model.json`'s value; returns the chart names.
pub fn model_charts(dir: &Path, json: &serde_json::Value) -> Result<Vec<String>, String> {
    let mut names = Vec::new();
    let models = json.get("models").and_then(|m| m.as_array()).cloned().unwrap_or_default();
    for (i, m) in models.iter().enumerate() {
        let suffix = if models.len() > 1 { format!("_{i}") } else { String::new() };
        let refits = m.get("refits").and_then(|r| r.as_array()).cloned().unwrap_or_default();
        let f = |r: &serde_json::Value, k: &str| r.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
        let auc: Vec<f64> = refits.iter().map(|r| f(r, "auc")).collect();
        let acc: Vec<f64> = refits.iter().map(|r| f(r, "accuracy")).collect();
        let name = format!("model_auc{suffix}");
        both!(dir, &name, (1100, 360), |r| per_refit(r, &auc, &acc))?;
        names.push(name);
        let cal: Vec<(f64, f64, f64)> = m
            .get("calibration")
            .and_then(|c| c.as_array())
            .map(|c| c.iter().map(|b| (f(b, "mean_p_up"), f(b, "observed_up"), f(b, "bars"))).collect())
            .unwrap_or_default();
        let name = format!("model_calibration{suffix}");
        both!(dir, &name, (560, 480), |r| calibration(r, &cal))?;
        names.push(name);
        let features: Vec<String> = m
            .get("features")
            .and_then(|v| v.as_array())
            .map(|v| v.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default();
        let mean: Vec<f64> = features
            .iter()
            .map(|feat| {
                let v: Vec<f64> = refits.iter().filter_map(|r| r.get("importance")?.get(feat)?.as_f64()).collect();
                if v.is_empty() {
                    0.0
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            })
            .collect();
        let name = format!("model_importance{suffix}");
        both!(dir, &name, (1100, 120 + 28 * features.len() as u32), |r| importance(r, &features, &mean))?;
        names.push(name);
    }
    Ok(names)
}

fn per_refit<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, auc: &[f64], acc: &[f64]) -> Res {
    let n = auc.len().max(1) as f64;
    let (lo, hi) = range(auc.iter().chain(acc).copied().chain([0.5]));
    let mut chart = ChartBuilder::on(root)
        .caption("Out of sample, per refit - AUC of \"up\" and accuracy", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.5..n - 0.5, lo.min(0.45)..hi.max(0.55))
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("refit")
        .y_desc("score")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&tick)
        .draw()
        .map_err(e)?;
    chart.draw_series(LineSeries::new([(-0.5, 0.5), (n - 0.5, 0.5)], PALETTE[7].stroke_width(1))).map_err(e)?.label("chance (0.5)");
    for (vals, c, label) in [(auc, PALETTE[0], "AUC"), (acc, PALETTE[1], "accuracy")] {
        let pts: Vec<(f64, f64)> = vals.iter().enumerate().filter(|(_, v)| v.is_finite()).map(|(k, v)| (k as f64, *v)).collect();
        chart
            .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2)));
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled()))).map_err(e)?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

fn calibration<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, bins: &[(f64, f64, f64)]) -> Res {
    let mut chart = ChartBuilder::on(root)
        .caption("Calibration (out of sample)", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..1.0, 0.0..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("predicted P(up)")
        .y_desc("observed share up")
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .draw()
        .map_err(e)?;
    chart.draw_series(LineSeries::new([(0.0, 0.0), (1.0, 1.0)], PALETTE[7].stroke_width(1))).map_err(e)?;
    let pts: Vec<(f64, f64)> = bins.iter().filter(|b| b.0.is_finite() && b.1.is_finite()).map(|b| (b.0, b.1)).collect();
    chart.draw_series(LineSeries::new(pts.clone(), PALETTE[0].stroke_width(2))).map_err(e)?;
    let most = bins.iter().map(|b| b.2).fold(1.0, f64::max);
    chart
        .draw_series(
            bins.iter()
                .filter(|b| b.0.is_finite() && b.1.is_finite())
                .map(|b| Circle::new((b.0, b.1), 3 + (9.0 * (b.2 / most).sqrt()) as i32, PALETTE[0].mix(0.6).filled())),
        )
        .map_err(e)?;
    Ok(())
}

fn importance<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, features: &[String], mean: &[f64]) -> Res {
    let k = features.len().max(1);
    let (lo, hi) = range(mean.iter().copied().chain([0.0]));
    let mut chart = ChartBuilder::on(root)
        .caption("Feature importance: rise in held-out log loss when shuffled (mean over refits)", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(260)
        .build_cartesian_2d(lo.min(0.0)..hi.max(1e-6), -0.5..k as f64 - 0.5)
        .map_err(e)?;
    let names = features.to_vec();
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(k)
        .y_label_formatter(&|v| {
            let i = v.round();
            if (v - i).abs() < 1e-6 && i >= 0.0 {
                names.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .x_label_formatter(&tick)
        .draw()
        .map_err(e)?;
    chart
        .draw_series(mean.iter().enumerate().map(|(i, v)| {
            let c = if *v >= 0.0 { PALETTE[0] } else { PALETTE[3] };
            Rectangle::new([(0.0, i as f64 - 0.35), (*v, i as f64 + 0.35)], c.filled())
        }))
        .map_err(e)?;
    Ok(())
}
