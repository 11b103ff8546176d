//! Standard test functions of optimization on the unit cube, minimized: shared by the
//! sample-efficiency bench and the parity test against Optuna, which must measure the same ones.

/// Branin on `[0, 1]^2` (mapped to x1 in [-5, 10], x2 in [0, 15]); optimum 0.397887.
pub fn branin(u: &[f64]) -> f64 {
    let (x1, x2) = (-5.0 + 15.0 * u[0], 15.0 * u[1]);
    let pi = std::f64::consts::PI;
    (x2 - 5.1 / (4.0 * pi * pi) * x1 * x1 + 5.0 / pi * x1 - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * pi)) * x1.cos() + 10.0
}

/// Hartmann-6 on `[0, 1]^6`; optimum -3.32237.
pub fn hartmann6(x: &[f64]) -> f64 {
    let a = [1.0, 1.2, 3.0, 3.2];
    let aa = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    let p = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ];
    -(0..4).map(|i| a[i] * (-(0..6).map(|j| aa[i][j] * (x[j] - p[i][j]).powi(2)).sum::<f64>()).exp()).sum::<f64>()
}
