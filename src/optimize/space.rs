//! Search spaces: dimensions over experiment fields, decoding points of the unit cube into field
//! values, grids, rules between fields and constraints on statistics.

use crate::experiment::{set_path, Experiment};
use std::cmp::Ordering;

/// One dimension of a search.
#[derive(Debug, Clone, PartialEq)]
pub enum Dim {
    /// Real values in [lo, hi], optionally on a log scale or a step.
    Float {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
        /// Sample on a log scale.
        log: bool,
        /// Round to multiples of this above `lo`.
        step: Option<f64>,
    },
    /// Integers lo, lo+step, ..., <= hi.
    Int {
        /// Lower bound.
        lo: i64,
        /// Upper bound.
        hi: i64,
        /// Step.
        step: i64,
    },
    /// One of several values (numbers, strings or booleans).
    Choice(Vec<toml::Value>),
}

/// A search space: paths and their dimensions, in path order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Space {
    /// Field paths.
    pub paths: Vec<String>,
    /// Their dimensions.
    pub dims: Vec<Dim>,
}

fn num(v: &toml::Value) -> Option<f64> {
    v.as_float().or_else(|| v.as_integer().map(|i| i as f64))
}

impl Dim {
    /// Parse a dimension: `[lo, hi]` or `{ min, max, step, log, int }` or `{ choices = [...] }`.
    pub fn parse(v: &toml::Value) -> Result<Dim, String> {
        let (lo, hi, step, log, int) = match v {
            toml::Value::Array(a) if a.len() == 2 => {
                let int = a.iter().all(|x| x.is_integer());
                (a[0].clone(), a[1].clone(), None, false, int)
            }
            toml::Value::Table(t) => {
                for k in t.keys() {
                    if !["min", "max", "step", "log", "int", "choices"].contains(&k.as_str()) {
                        return Err(format!("unknown key '{k}' (expected min, max, step, log, int or choices)"));
                    }
                }
                if let Some(c) = t.get("choices") {
                    let c = c.as_array().filter(|c| !c.is_empty()).ok_or("choices must be a non-empty list")?;
                    return Ok(Dim::Choice(c.clone()));
                }
                let lo = t.get("min").ok_or("missing min")?.clone();
                let hi = t.get("max").ok_or("missing max")?.clone();
                let int = t
                    .get("int")
                    .and_then(|b| b.as_bool())
                    .unwrap_or(lo.is_integer() && hi.is_integer() && t.get("step").is_none_or(|s| s.is_integer()));
                let log = t.get("log").and_then(|b| b.as_bool()).unwrap_or(false);
                (lo, hi, t.get("step").cloned(), log, int && !log)
            }
            _ => return Err("expected [min, max] or a table with min and max, or choices".into()),
        };
        let (lo, hi) = (num(&lo).ok_or("min must be a number")?, num(&hi).ok_or("max must be a number")?);
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(format!("need min < max, got {lo} and {hi}"));
        }
        let step = match step {
            Some(s) => Some(num(&s).filter(|s| *s > 0.0).ok_or("step must be a positive number")?),
            None => None,
        };
        if int {
            let s = step.unwrap_or(1.0);
            if lo.fract() != 0.0 || hi.fract() != 0.0 || s.fract() != 0.0 {
                return Err("integer dimension needs integer min, max and step".into());
            }
            return Ok(Dim::Int { lo: lo as i64, hi: hi as i64, step: s as i64 });
        }
        if log && lo <= 0.0 {
            return Err("a log scale needs min > 0".into());
        }
        Ok(Dim::Float { lo, hi, log, step })
    }

    /// Number of distinct values (None for continuous floats).
    pub fn count(&self) -> Option<usize> {
        match self {
            Dim::Int { lo, hi, step } => Some(((hi - lo) / step + 1) as usize),
            Dim::Float { lo, hi, step: Some(s), .. } => Some(((hi - lo) / s + 1e-9).floor() as usize + 1),
            Dim::Float { .. } => None,
            Dim::Choice(c) => Some(c.len()),
        }
    }

    /// The value at `u` in [0, 1].
    pub fn decode(&self, u: f64) -> toml::Value {
        let u = u.clamp(0.0, 1.0);
        let pick = |n: usize| ((u * n as f64).floor() as usize).min(n - 1);
        match self {
            Dim::Int { lo, step, .. } => toml::Value::Integer(lo + pick(self.count().unwrap_or(1)) as i64 * step),
            Dim::Float { lo, step: Some(s), .. } => toml::Value::Float(lo + pick(self.count().unwrap_or(1)) as f64 * s),
            Dim::Float { lo, hi, log: true, .. } => toml::Value::Float((lo.ln() + u * (hi.ln() - lo.ln())).exp()),
            Dim::Float { lo, hi, .. } => toml::Value::Float(lo + u * (hi - lo)),
            Dim::Choice(c) => c[pick(c.len())].clone(),
        }
    }

    /// The `k`-th of `n` grid values.
    pub fn grid_value(&self, k: usize, n: usize) -> toml::Value {
        match self.count() {
            Some(_) => self.decode((k as f64 + 0.5) / n as f64),
            None => self.decode(if n == 1 { 0.5 } else { k as f64 / (n - 1) as f64 }),
        }
    }

    /// Grid size along this dimension.
    pub fn grid_len(&self, float_points: usize) -> usize {
        self.count().unwrap_or(float_points.max(1))
    }
}

impl Space {
    /// Parse `[optimize.space]`; errors carry the path.
    pub fn parse(space: &std::collections::BTreeMap<String, toml::Value>) -> Result<Space, (String, String)> {
        let mut s = Space::default();
        for (path, v) in space {
            let d = Dim::parse(v).map_err(|m| (format!("optimize.space.\"{path}\""), m))?;
            s.paths.push(path.clone());
            s.dims.push(d);
        }
        Ok(s)
    }

    /// Values of a point of the unit cube.
    pub fn decode(&self, u: &[f64]) -> Vec<toml::Value> {
        self.dims.iter().zip(u).map(|(d, &x)| d.decode(x)).collect()
    }

    /// Number of grid points.
    pub fn grid_size(&self, float_points: usize) -> usize {
        self.dims.iter().map(|d| d.grid_len(float_points)).product()
    }

    /// The `i`-th grid point (mixed radix, last dimension fastest).
    pub fn grid_point(&self, mut i: usize, float_points: usize) -> Vec<toml::Value> {
        let mut out = vec![toml::Value::Integer(0); self.dims.len()];
        for (k, d) in self.dims.iter().enumerate().rev() {
            let n = d.grid_len(float_points);
            out[k] = d.grid_value(i % n, n);
            i /= n;
        }
        out
    }
}

/// A comparison `left op right` between parameter paths or numbers (rules) or between a
/// statistic and a number (constraints).
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Left operand: a path / statistic name, or a number.
    pub left: String,
    /// `<`, `<=`, `>`, `>=`, `==`, `!=`.
    pub op: &'static str,
    /// Right operand.
    pub right: String,
}

impl Comparison {
    /// Parse `a <= b`.
    pub fn parse(s: &str) -> Result<Comparison, String> {
        for op in ["<=", ">=", "==", "!=", "<", ">"] {
            if let Some((l, r)) = s.split_once(op) {
                let (l, r) = (l.trim(), r.trim());
                // Exactly one operator: `<==` or `a < b < c` is not a comparison.
                let stray = |x: &str| x.contains(['<', '>', '=', '!']);
                if l.is_empty() || r.is_empty() || stray(l) || stray(r) {
                    break;
                }
                return Ok(Comparison { left: l.into(), op, right: r.into() });
            }
        }
        Err(format!("'{s}' is not of the form `a <= b` (operators <, <=, >, >=, ==, !=)"))
    }

    /// Evaluate with a lookup for names; None when a name is unknown.
    pub fn holds(&self, lookup: &dyn Fn(&str) -> Option<f64>) -> Option<bool> {
        let val = |x: &str| x.parse::<f64>().ok().or_else(|| lookup(x));
        let (a, b) = (val(&self.left)?, val(&self.right)?);
        let ord = a.partial_cmp(&b)?;
        Some(match self.op {
            "<" => ord == Ordering::Less,
            "<=" => ord != Ordering::Greater,
            ">" => ord == Ordering::Greater,
            ">=" => ord != Ordering::Less,
            "==" => ord == Ordering::Equal,
            _ => ord != Ordering::Equal,
        })
    }

    /// How far the comparison is from holding (0 when it holds).
    pub fn violation(&self, lookup: &dyn Fn(&str) -> Option<f64>) -> f64 {
        let val = |x: &str| x.parse::<f64>().ok().or_else(|| lookup(x));
        match (val(&self.left), val(&self.right), self.holds(lookup)) {
            (_, _, Some(true)) => 0.0,
            (Some(a), Some(b), _) => (a - b).abs().max(1e-12),
            _ => f64::INFINITY,
        }
    }
}

/// Read a number at `path` in an experiment's TOML tree.
pub fn number_at(root: &toml::Value, path: &str) -> Option<f64> {
    let mut cur = root;
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        cur = cur.get(name)?;
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    num(cur)
}

/// Check that every path of a space can be set on the experiment (it names a field).
pub fn check_paths(exp: &Experiment, space: &Space) -> Result<(), (String, String)> {
    let root = toml::Value::try_from(exp).map_err(|e| ("optimize".to_string(), e.to_string()))?;
    for (p, d) in space.paths.iter().zip(&space.dims) {
        let mut r = root.clone();
        let v = d.decode(0.5);
        set_path(&mut r, p, v).map_err(|m| (format!("optimize.space.\"{p}\""), m))?;
        // Setting an unknown key just adds it: deserializing tells whether the field exists.
        if let Err(e) = <Experiment as serde::Deserialize>::deserialize(r) {
            return Err((format!("optimize.space.\"{p}\""), format!("not a field of the experiment ({})", e.message())));
        }
        if p.starts_with("optimize") || p.starts_with("experiment.name") {
            return Err((format!("optimize.space.\"{p}\""), "cannot search over this field".into()));
        }
    }
    Ok(())
}
