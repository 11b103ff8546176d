//! The law of a bar's range given its return under a Brownian bridge of a few Gaussian steps,
//! tabulated by simulation: the pf detector's bar likelihood.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The law of a bar's log range given its log return's size, for a Brownian bridge of `steps`
/// Gaussian steps with unit total variance pinned at `u = |return| / sd`: `ln P(range = u)` and
/// the log density of `ln(range - u)`, tabulated over `u` by simulation and smoothed.
#[derive(Debug, Clone)]
pub struct RangeLaw {
    du: f64,
    ld0: f64,
    dld: f64,
    cols: usize,
    atom: Vec<f64>,
    dens: Vec<f64>,
}

/// Unit-variance Brownian bridges of `steps` steps (deviations from the straight line), one
/// `steps + 1` row per sample, from a fixed seed.
pub(super) fn bridges(steps: usize, samples: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x0B21D6E);
    let mut out = vec![0.0f64; samples * (steps + 1)];
    let sd = 1.0 / (steps as f64).sqrt();
    for b in out.chunks_mut(steps + 1) {
        let mut w = 0.0;
        for p in b.iter_mut().skip(1) {
            w += sd * normal(&mut rng);
            *p = w;
        }
        let end = w;
        for (j, p) in b.iter_mut().enumerate() {
            *p -= j as f64 / steps as f64 * end;
        }
    }
    out
}

/// Range of a bridge row pinned at `u`, less `u`.
pub(super) fn excess(b: &[f64], u: f64) -> f64 {
    let k = (b.len() - 1) as f64;
    let (mut hi, mut lo) = (0.0f64, 0.0f64);
    for (j, p) in b.iter().enumerate() {
        let x = p + j as f64 / k * u;
        hi = hi.max(x);
        lo = lo.min(x);
    }
    (hi - lo) - u
}

fn normal(rng: &mut ChaCha8Rng) -> f64 {
    rng.sample(rand_distr::StandardNormal)
}

impl RangeLaw {
    /// Tabulate for `steps` intrabar steps from `samples` simulated bridges.
    pub fn build(steps: usize, samples: usize) -> RangeLaw {
        let (du, u_max, ld0, dld, cols) = (0.05, 20.0, -10.0, 0.02, 650);
        let rows = (u_max / du) as usize + 1;
        let br = bridges(steps, samples);
        // Gaussian smoothing over 3 bins each side of sd.
        let ker: Vec<f64> = (-12..=12).map(|o: i32| (-0.5 * (o as f64 / 3.0).powi(2)).exp()).collect();
        let ks: f64 = ker.iter().sum();
        let (mut atom, mut dens) = (Vec::with_capacity(rows), Vec::with_capacity(rows * cols));
        let mut hist = vec![0.0f64; cols];
        for row in 0..rows {
            let u = row as f64 * du;
            hist.iter_mut().for_each(|h| *h = 0.0);
            let mut atoms = 0usize;
            for b in br.chunks(steps + 1) {
                let d = excess(b, u);
                if d <= 1e-12 {
                    atoms += 1;
                } else {
                    hist[((d.ln() - ld0) / dld).floor().clamp(0.0, cols as f64 - 1.0) as usize] += 1.0;
                }
            }
            atom.push(((atoms as f64).max(0.5) / samples as f64).ln());
            for c in 0..cols {
                let s: f64 = ker.iter().enumerate().filter_map(|(o, kv)| hist.get((c + o).checked_sub(12)?).map(|h| kv * h)).sum();
                dens.push((s / ks / samples as f64 / dld).max(1e-9).ln());
            }
        }
        RangeLaw { du, ld0, dld, cols, atom, dens }
    }

    /// Log likelihood of a bar with log range `range` and log return size `body` at standard
    /// deviation `sd`; `is_atom`: the range is the body.
    pub fn ll(&self, range: f64, body: f64, sd: f64, is_atom: bool) -> f64 {
        let rows = self.atom.len();
        let x = (body / sd / self.du).min(rows as f64 - 1.000001);
        let (r0, fr) = (x as usize, x.fract());
        if is_atom {
            return (1.0 - fr) * self.atom[r0] + fr * self.atom[r0 + 1];
        }
        let y = (((range - body).max(1e-300).ln() - sd.ln() - self.ld0) / self.dld - 0.5).clamp(0.0, self.cols as f64 - 1.000001);
        let (c0, fc) = (y as usize, y.fract());
        let at = |r: usize, c: usize| self.dens[r * self.cols + c];
        (1.0 - fr) * ((1.0 - fc) * at(r0, c0) + fc * at(r0, c0 + 1)) + fr * ((1.0 - fc) * at(r0 + 1, c0) + fc * at(r0 + 1, c0 + 1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::distribution::{Continuous, ContinuousCDF, Normal};

    #[test]
    fn a_two_step_bridge_stays_in_its_body_as_a_normal_law_says() {
        // Two steps: the one inner point is u/2 + N(0, 1/4), and the range is the body exactly
        // when that point lies in [0, u]: probability 2*Phi(u) - 1.
        let law = RangeLaw::build(2, 40_000);
        let n = Normal::new(0.0, 1.0).unwrap();
        for u in [0.5, 1.0, 2.0] {
            let p = law.ll(u, u, 1.0, true).exp();
            assert!((p - (2.0 * n.cdf(u) - 1.0)).abs() < 0.01, "u {u}: {p}");
        }
        // One step: the path is the body.
        assert!(RangeLaw::build(1, 1000).ll(1.0, 1.0, 1.0, true).exp() > 0.99);
    }

    #[test]
    fn a_flat_two_step_bridge_ranges_as_a_half_normal() {
        // Body 0: the range is |N(0, 1/4)|, so ln(range) = y has density 2 * phi(e^y / 0.5) / 0.5 * e^y.
        let law = RangeLaw::build(2, 40_000);
        let n = Normal::new(0.0, 0.5).unwrap();
        for y in [-1.5f64, -0.7, 0.0] {
            let want = 2.0 * n.pdf(y.exp()) * y.exp();
            let got = law.ll(y.exp(), 0.0, 1.0, false).exp();
            assert!((got / want - 1.0).abs() < 0.06, "y {y}: {got} vs {want}");
        }
        // Twice the sd, the same law at half the scale: the density of ln(range) moves by ln 2.
        let got = law.ll((-0.7f64).exp() * 2.0, 0.0, 2.0, false).exp();
        let want = 2.0 * n.pdf((-0.7f64).exp()) * (-0.7f64).exp();
        assert!((got / want - 1.0).abs() < 0.06, "{got} vs {want}");
    }
}
