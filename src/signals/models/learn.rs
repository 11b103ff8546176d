//! The learners behind `[[signals.models]]`, on smartcore (pure Rust, no BLAS, ~8 s to build):
//! L2-regularised logistic regression (L-BFGS; binary, or multinomial for three classes) and a
//! bagged ensemble of its decision trees; Platt calibration of their probabilities; and the
//! out-of-sample scores (AUC, accuracy, Brier score, log loss).
//!
//! Classes are the directions -1, 0, +1; a probability vector holds one entry per class of
//! [`Classes`], in that order, whether or not a class occurred in the training samples.

use crate::experiment::{ModelKind, ModelSignal};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;
use smartcore::linear::logistic_regression::{LogisticRegression, LogisticRegressionParameters};
use smartcore::tree::decision_tree_classifier::{DecisionTreeClassifier, DecisionTreeClassifierParameters};

/// The classes a label can take, in probability-vector order.
pub type Classes = &'static [i8];

/// One of smartcore's classification trees over our matrices.
pub type Tree = DecisionTreeClassifier<f64, i32, DenseMatrix<f64>, Vec<i32>>;

/// A fitted learner.
pub enum Fitted {
    /// Logistic regression: per class row, weights and intercept (one row for two classes: the
    /// second class's log-odds).
    Logistic { w: Vec<Vec<f64>>, b: Vec<f64>, classes: Vec<i8> },
    /// Trees, each with the classes it saw.
    Forest(Vec<(Tree, Vec<i8>)>),
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Fit a learner on standardised rows `x` with labels `y` (each in `classes`); `seed` drives the
/// forest's bootstrap.
pub fn fit(cfg: &ModelSignal, x: &[Vec<f64>], y: &[i8], seed: u64) -> Result<Fitted, String> {
    let ys: Vec<i32> = y.iter().map(|&v| v as i32).collect();
    match cfg.model {
        ModelKind::Logistic => {
            let mut present: Vec<i8> = y.to_vec();
            present.sort_unstable();
            present.dedup();
            if present.len() < 2 {
                // One class only: predict it with certainty (no boundary to learn).
                let d = x.first().map_or(0, Vec::len);
                return Ok(Fitted::Logistic { w: vec![vec![0.0; d]], b: vec![f64::INFINITY], classes: vec![present[0], present[0]] });
            }
            let m = DenseMatrix::from_2d_vec(&x.to_vec()).map_err(|e| e.to_string())?;
            let lr =
                LogisticRegression::fit(&m, &ys, LogisticRegressionParameters::default().with_alpha(cfg.l2)).map_err(|e| e.to_string())?;
            let (c, i) = (lr.coefficients(), lr.intercept());
            let (k, d) = c.shape();
            let w = (0..k).map(|r| (0..d).map(|j| *c.get((r, j))).collect()).collect();
            let b = (0..k).map(|r| *i.get((r, 0))).collect();
            Ok(Fitted::Logistic { w, b, classes: lr.classes().iter().map(|&v| v as i8).collect() })
        }
        ModelKind::Forest => {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let n = x.len();
            let mut trees = Vec::with_capacity(cfg.trees);
            for t in 0..cfg.trees {
                let idx: Vec<usize> = (0..n).map(|_| rng.gen_range(0..n)).collect();
                let rows: Vec<Vec<f64>> = idx.iter().map(|&i| x[i].clone()).collect();
                let yb: Vec<i32> = idx.iter().map(|&i| ys[i]).collect();
                let m = DenseMatrix::from_2d_vec(&rows).map_err(|e| e.to_string())?;
                let p = DecisionTreeClassifierParameters {
                    max_depth: Some(cfg.max_depth),
                    min_samples_leaf: cfg.min_leaf,
                    seed: Some(seed.wrapping_add(t as u64)),
                    ..Default::default()
                };
                let tree = DecisionTreeClassifier::fit(&m, &yb, p).map_err(|e| e.to_string())?;
                // The tree's probability columns are its classes sorted (smartcore's `unique`).
                let mut cl: Vec<i8> = yb.iter().map(|&v| v as i8).collect();
                cl.sort_unstable();
                cl.dedup();
                trees.push((tree, cl));
            }
            Ok(Fitted::Forest(trees))
        }
    }
}

impl Fitted {
    /// Probability of each of `classes` for each row.
    pub fn predict(&self, x: &[Vec<f64>], classes: Classes) -> Vec<Vec<f64>> {
        let slot = |c: i8| classes.iter().position(|&k| k == c).expect("a known class");
        match self {
            Fitted::Logistic { w, b, classes: seen } => x
                .iter()
                .map(|row| {
                    let score = |r: usize| b[r] + w[r].iter().zip(row).map(|(a, v)| a * v).sum::<f64>();
                    let mut p = vec![0.0; classes.len()];
                    if w.len() == 1 {
                        let up = sigmoid(score(0));
                        p[slot(seen[1])] += up;
                        p[slot(seen[0])] += 1.0 - up;
                    } else {
                        let s: Vec<f64> = (0..w.len()).map(score).collect();
                        let top = s.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                        let z: f64 = s.iter().map(|v| (v - top).exp()).sum();
                        for (r, v) in s.iter().enumerate() {
                            p[slot(seen[r])] = (v - top).exp() / z;
                        }
                    }
                    p
                })
                .collect(),
            Fitted::Forest(trees) => {
                let m = match DenseMatrix::from_2d_vec(&x.to_vec()) {
                    Ok(m) => m,
                    Err(_) => return vec![vec![f64::NAN; classes.len()]; x.len()],
                };
                let mut out = vec![vec![0.0; classes.len()]; x.len()];
                for (tree, seen) in trees {
                    let Ok(pr) = tree.predict_proba(&m) else { continue };
                    for (i, o) in out.iter_mut().enumerate() {
                        for (j, &c) in seen.iter().enumerate() {
                            o[slot(c)] += *pr.get((i, j)) / trees.len() as f64;
                        }
                    }
                }
                out
            }
        }
    }
}

/// Platt scaling per class: `p' = sigmoid(a * logit(p) + b)` fitted by Newton's method on a
/// held-out slice, with a Gaussian prior pulling (a, b) towards the identity (1, 0), worth a
/// tenth of the slice, so a small, separable or narrow slice cannot blow probabilities out to 0
/// or 1; then renormalised over the classes.
#[derive(Debug, Clone)]
pub struct Platt(Vec<(f64, f64)>);

fn logit(p: f64) -> f64 {
    let p = p.clamp(1e-6, 1.0 - 1e-6);
    (p / (1.0 - p)).ln()
}

impl Platt {
    /// Fit on held-out probabilities and their true classes (identity where a class never or
    /// always occurs).
    pub fn fit(probs: &[Vec<f64>], y: &[i8], classes: Classes) -> Platt {
        let per = classes
            .iter()
            .enumerate()
            .map(|(k, &c)| {
                let xs: Vec<f64> = probs.iter().map(|p| logit(p[k])).collect();
                let ts: Vec<f64> = y.iter().map(|&v| f64::from(u8::from(v == c))).collect();
                let pos = ts.iter().sum::<f64>();
                if pos == 0.0 || pos == ts.len() as f64 {
                    return (1.0, 0.0);
                }
                // Platt's targets, pulled off 0 and 1 so separable slices stay finite.
                let (hi, lo) = ((pos + 1.0) / (pos + 2.0), 1.0 / (ts.len() as f64 - pos + 2.0));
                let ts: Vec<f64> = ts.iter().map(|t| if *t > 0.5 { hi } else { lo }).collect();
                // The prior is worth a tenth of the slice: enough to keep a slope fitted on a
                // narrow band of logits from amplifying predictions outside it.
                let prior = (0.1 * ts.len() as f64).max(1.0);
                let (mut a, mut b) = (1.0, 0.0);
                for _ in 0..50 {
                    let (mut ga, mut gb, mut haa, mut hab, mut hbb) = (prior * (a - 1.0), prior * b, prior, 0.0, prior);
                    for (x, t) in xs.iter().zip(&ts) {
                        let p = sigmoid(a * x + b);
                        let (d, w) = (p - t, p * (1.0 - p));
                        ga += d * x;
                        gb += d;
                        haa += w * x * x;
                        hab += w * x;
                        hbb += w;
                    }
                    let det = haa * hbb - hab * hab;
                    if det.abs() < 1e-12 {
                        break;
                    }
                    let (da, db) = ((hbb * ga - hab * gb) / det, (haa * gb - hab * ga) / det);
                    a -= da;
                    b -= db;
                    if da.abs() + db.abs() < 1e-10 {
                        break;
                    }
                }
                if a.is_finite() && b.is_finite() {
                    (a, b)
                } else {
                    (1.0, 0.0)
                }
            })
            .collect();
        Platt(per)
    }

    /// Calibrated probabilities.
    pub fn apply(&self, p: &[f64]) -> Vec<f64> {
        let q: Vec<f64> = p.iter().zip(&self.0).map(|(&v, &(a, b))| if v <= 0.0 { 0.0 } else { sigmoid(a * logit(v) + b) }).collect();
        let z: f64 = q.iter().sum();
        if z > 0.0 {
            q.iter().map(|v| v / z).collect()
        } else {
            p.to_vec()
        }
    }
}

/// Area under the ROC curve of `score` for the positives `pos` (ties count half); NaN without
/// both kinds.
pub fn auc(score: &[f64], pos: &[bool]) -> f64 {
    let mut idx: Vec<usize> = (0..score.len()).collect();
    idx.sort_by(|&a, &b| score[a].total_cmp(&score[b]));
    let (np, nn) = (pos.iter().filter(|p| **p).count() as f64, pos.iter().filter(|p| !**p).count() as f64);
    if np == 0.0 || nn == 0.0 {
        return f64::NAN;
    }
    // Mid-ranks of tied scores.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && score[idx[j + 1]] == score[idx[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += (i..=j).filter(|&k| pos[idx[k]]).count() as f64 * mid;
        i = j + 1;
    }
    (rank_sum - np * (np + 1.0) / 2.0) / (np * nn)
}

/// Out-of-sample scores of probability vectors against true classes: (AUC of "up" against the
/// rest, accuracy of the likeliest class, Brier score summed over classes, log loss).
pub fn scores(probs: &[Vec<f64>], y: &[i8], classes: Classes) -> (f64, f64, f64, f64) {
    if y.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
    }
    let up = classes.iter().position(|&c| c == 1).expect("up is a class");
    let s: Vec<f64> = probs.iter().map(|p| p[up]).collect();
    let pos: Vec<bool> = y.iter().map(|&v| v == 1).collect();
    let n = y.len() as f64;
    let (mut hit, mut brier, mut ll) = (0.0, 0.0, 0.0);
    for (p, &v) in probs.iter().zip(y) {
        let k = classes.iter().position(|&c| c == v).expect("a known class");
        let best = (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0);
        hit += f64::from(u8::from(best == k));
        brier += p.iter().enumerate().map(|(j, q)| (q - f64::from(u8::from(j == k))).powi(2)).sum::<f64>();
        ll -= p[k].clamp(1e-15, 1.0).ln();
    }
    (auc(&s, &pos), hit / n, brier / n, ll / n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        // Positives 0.8, 0.4; negatives 0.5, 0.1: pairs won 3 of 4.
        assert_eq!(auc(&[0.8, 0.5, 0.4, 0.1], &[true, false, true, false]), 0.75);
        // A tie counts half.
        assert_eq!(auc(&[0.5, 0.5], &[true, false]), 0.5);
        assert!(auc(&[0.5], &[true]).is_nan());
    }

    #[test]
    fn scores_by_hand() {
        const C: Classes = &[-1, 1];
        let p = vec![vec![0.2, 0.8], vec![0.6, 0.4]];
        let (a, acc, brier, ll) = scores(&p, &[1, 1], C);
        assert!(a.is_nan()); // no negatives
        assert_eq!(acc, 0.5);
        assert!((brier - (0.04 + 0.04 + 0.36 + 0.36) / 2.0).abs() < 1e-12);
        assert!((ll - (-(0.8f64.ln()) - 0.4f64.ln()) / 2.0).abs() < 1e-12);
    }

    #[test]
    fn platt_pulls_overconfident_probabilities_in() {
        // Half the rows say 0.9 for "up" and are right 30 times in 50, half say 0.7 and are right
        // 25 times: two points, two parameters, so without the prior each group's calibrated
        // probability is the mean of its Platt targets (55 ups of 100: 56/57 for an up, 1/47 for
        // a down).
        const C: Classes = &[-1, 1];
        let mut probs = vec![vec![0.1, 0.9]; 50];
        probs.extend(vec![vec![0.3, 0.7]; 50]);
        let y: Vec<i8> = (0..100).map(|i| if (i < 50 && i % 5 < 3) || (i >= 50 && i % 2 == 0) { 1 } else { -1 }).collect();
        let platt = Platt::fit(&probs, &y, C);
        let want_a = (30.0 * 56.0 / 57.0 + 20.0 / 47.0) / 50.0;
        let want_b = (25.0 * 56.0 / 57.0 + 25.0 / 47.0) / 50.0;
        // The prior (worth 10 of the 100 samples) moves them towards the raw 0.9 and 0.7.
        let (got_a, got_b) = (platt.apply(&[0.1, 0.9])[1], platt.apply(&[0.3, 0.7])[1]);
        assert!((got_a - want_a).abs() < 0.05 && got_a < 0.7, "{got_a} vs {want_a}");
        assert!((got_b - want_b).abs() < 0.05, "{got_b} vs {want_b}");
    }
}
