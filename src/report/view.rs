//! A saved run, optimization or walk-forward folder read back from its CSV and JSON files: what
//! the charts and pages are drawn from, so `tradelab report DIR` draws exactly what the run did.

use crate::data::time::parse_timestamp;
use crate::data::TimestampUnit;
use crate::error::{Error, Loc, Result};
use std::path::{Path, PathBuf};

/// A CSV file of ours: header names and rows of fields (double-quoted fields may hold commas).
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// The file.
    pub path: PathBuf,
    /// Column names.
    pub names: Vec<String>,
    /// Rows.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// Open `path` for reading row by row: the reader and the header's names.
    pub fn open(path: &Path) -> Result<(csv::Reader<std::fs::File>, Vec<String>)> {
        let mut rd = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(true)
            .from_path(path)
            .map_err(|e| Error::data(path, None, "unreadable", e.to_string()))?;
        let names: Vec<String> = rd
            .headers()
            .map_err(|e| Error::data(path, Some(Loc::Line(1)), "bad-header", e.to_string()))?
            .iter()
            .map(String::from)
            .collect();
        Ok((rd, names))
    }

    /// Read `path` (CSV with quoting, through the `csv` crate).
    pub fn read(path: &Path) -> Result<Table> {
        let (mut rd, names) = Table::open(path)?;
        let mut rows = Vec::new();
        for (i, r) in rd.records().enumerate() {
            let r = r.map_err(|e| Error::data(path, Some(Loc::Line(i + 2)), "bad-row", e.to_string()))?;
            if r.len() == 1 && r[0].is_empty() {
                continue;
            }
            if r.len() != names.len() {
                return Err(Error::data(
                    path,
                    Some(Loc::Line(i + 2)),
                    "field-count",
                    format!("{} fields, the header has {}", r.len(), names.len()),
                ));
            }
            rows.push(r.iter().map(String::from).collect());
        }
        Ok(Table { path: path.to_path_buf(), names, rows })
    }

    /// Read `path` if it exists.
    pub fn read_opt(path: &Path) -> Result<Option<Table>> {
        if path.exists() {
            Table::read(path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Index of a column.
    pub fn col(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn need(&self, name: &str) -> Result<usize> {
        self.col(name).ok_or_else(|| {
            Error::data(&self.path, None, "missing-column", format!("no '{name}' column; the file has: {}", self.names.join(", ")))
        })
    }

    /// A numeric column (empty fields are NaN).
    pub fn f64s(&self, name: &str) -> Result<Vec<f64>> {
        let c = self.need(name)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let s = r[c].trim();
                if s.is_empty() {
                    return Ok(f64::NAN);
                }
                s.parse::<f64>().map_err(|_| {
                    Error::data(&self.path, Some(Loc::Line(i + 2)), "unparsable-number", format!("{name}: '{s}' is not a number"))
                })
            })
            .collect()
    }

    /// A text column.
    pub fn strs(&self, name: &str) -> Result<Vec<String>> {
        let c = self.need(name)?;
        Ok(self.rows.iter().map(|r| r[c].clone()).collect())
    }

    /// A timestamp column (ISO-8601, as we write them) in ms.
    pub fn times(&self, name: &str) -> Result<Vec<i64>> {
        let c = self.need(name)?;
        self.rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                parse_timestamp(r[c].trim(), TimestampUnit::Iso)
                    .ok_or_else(|| Error::data(&self.path, Some(Loc::Line(i + 2)), "unparsable-timestamp", format!("{name}: '{}'", r[c])))
            })
            .collect()
    }
}

/// A `timestamp` column and numeric columns, parsed as the file streams by (a curve file of
/// millions of rows costs its numbers, not a string per cell).
#[derive(Debug, Clone, PartialEq)]
pub struct Curves {
    /// Names of the numeric columns.
    pub names: Vec<String>,
    /// Times (ms).
    pub ts: Vec<i64>,
    /// One vector per named column (empty fields are NaN).
    pub cols: Vec<Vec<f64>>,
}

impl Curves {
    /// Read `path` if it exists: its first column is ISO-8601 times, the others numbers.
    pub fn read_opt(path: &Path) -> Result<Option<Curves>> {
        if !path.exists() {
            return Ok(None);
        }
        let mut rd = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .map_err(|e| Error::data(path, None, "unreadable", e.to_string()))?;
        let head = rd.headers().map_err(|e| Error::data(path, Some(Loc::Line(1)), "bad-header", e.to_string()))?.clone();
        let names: Vec<String> = head.iter().skip(1).map(String::from).collect();
        let (mut ts, mut cols) = (Vec::new(), vec![Vec::new(); names.len()]);
        let mut rec = csv::StringRecord::new();
        let mut line = 1;
        loop {
            line += 1;
            match rd.read_record(&mut rec) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(Error::data(path, Some(Loc::Line(line)), "bad-row", e.to_string())),
            }
            let bad = |what: String| Error::data(path, Some(Loc::Line(line)), "unparsable-value", what);
            let t = rec.get(0).unwrap_or("").trim();
            ts.push(parse_timestamp(t, TimestampUnit::Iso).ok_or_else(|| bad(format!("{}: '{t}'", &head[0])))?);
            for (j, col) in cols.iter_mut().enumerate() {
                let s = rec.get(j + 1).unwrap_or("").trim();
                col.push(if s.is_empty() {
                    f64::NAN
                } else {
                    s.parse().map_err(|_| bad(format!("{}: '{s}' is not a number", names[j])))?
                });
            }
        }
        Ok(Some(Curves { names, ts, cols }))
    }
}

/// One fill, for markers on price charts.
#[derive(Debug, Clone, PartialEq)]
pub struct FillMark {
    /// Time (ms).
    pub ts: i64,
    /// Symbol index in [`RunView::symbols`].
    pub sym: usize,
    /// Buy or sell.
    pub buy: bool,
    /// Price.
    pub price: f64,
    /// Why (`signal`, `stop_loss`, `rebalance`, ...).
    pub reason: String,
}

/// A run folder, read back.
#[derive(Debug, Clone, Default)]
pub struct RunView {
    /// The folder.
    pub dir: PathBuf,
    /// Bar times (ms).
    pub ts: Vec<i64>,
    /// Equity at each close.
    pub equity: Vec<f64>,
    /// Drawdown from the running peak, as a fraction.
    pub drawdown: Vec<f64>,
    /// Symbols.
    pub symbols: Vec<String>,
    /// Close per symbol per bar.
    pub prices: Vec<Vec<f64>>,
    /// Weight per symbol per bar.
    pub weights: Vec<Vec<f64>>,
    /// Target weight per symbol per bar (empty without rebalancing).
    pub targets: Vec<Vec<f64>>,
    /// Fills.
    pub fills: Vec<FillMark>,
    /// Net returns of closed trades.
    pub trade_returns: Vec<f64>,
    /// Regime label per bar (empty without `[regime]`).
    pub regimes: Vec<String>,
    /// `stats.json`.
    pub stats: serde_json::Value,
    /// `experiment.toml` as text.
    pub experiment: String,
    /// The rebalancing band, if any (for the weights chart).
    pub band: Option<f64>,
}

impl RunView {
    /// Starting equity.
    pub fn initial(&self) -> f64 {
        self.stats.get("initial_equity").and_then(|v| v.as_f64()).unwrap_or_else(|| self.equity.first().copied().unwrap_or(1.0))
    }

    /// Periods per year.
    pub fn per_year(&self) -> f64 {
        self.stats.get("periods_per_year").and_then(|v| v.as_f64()).unwrap_or(8760.0)
    }

    /// Equal-weight buy and hold of every symbol, in equity units.
    pub fn buy_and_hold(&self) -> Vec<f64> {
        let init = self.initial();
        let k = self.prices.len().max(1) as f64;
        (0..self.ts.len()).map(|t| init * self.prices.iter().map(|p| p[t] / p[0]).sum::<f64>() / k).collect()
    }
}

/// Read a run folder written by `tradelab run`.
pub fn load_run(dir: &Path) -> Result<RunView> {
    let eq = Table::read(&dir.join("equity.csv"))?;
    let ts = eq.times("timestamp")?;
    let equity = eq.f64s("equity")?;
    let drawdown = eq.f64s("drawdown")?;
    let prices_t = Table::read(&dir.join("prices.csv"))?;
    let symbols: Vec<String> = prices_t.names.iter().skip(1).cloned().collect();
    let prices = symbols.iter().map(|s| prices_t.f64s(s)).collect::<Result<Vec<_>>>()?;
    let w = Table::read(&dir.join("weights.csv"))?;
    let weights = symbols.iter().map(|s| w.f64s(s)).collect::<Result<Vec<_>>>()?;
    let targets = if w.col(&format!("target_{}", symbols[0])).is_some() {
        symbols.iter().map(|s| w.f64s(&format!("target_{s}"))).collect::<Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    let f = Table::read(&dir.join("fills.csv"))?;
    let (fts, fsym, fside, fprice, freason) =
        (f.times("timestamp")?, f.strs("symbol")?, f.strs("side")?, f.f64s("price")?, f.strs("reason")?);
    let fills = (0..f.rows.len())
        .filter_map(|i| {
            let sym = symbols.iter().position(|s| *s == fsym[i])?;
            Some(FillMark { ts: fts[i], sym, buy: fside[i] == "buy", price: fprice[i], reason: freason[i].clone() })
        })
        .collect();
    let tr = Table::read(&dir.join("trades.csv"))?;
    let (ret, why) = (tr.f64s("return")?, tr.strs("exit_reason")?);
    let trade_returns = ret.iter().zip(&why).filter(|(r, w)| r.is_finite() && w.as_str() != "open").map(|(r, _)| *r).collect();
    let regimes = match Table::read_opt(&dir.join("regimes.csv"))? {
        Some(t) => t.strs("regime")?,
        None => Vec::new(),
    };
    let path = dir.join("stats.json");
    let stats: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?)
        .map_err(|e| Error::data(&path, None, "bad-json", e.to_string()))?;
    let path = dir.join("experiment.toml");
    let experiment = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let band = toml::from_str::<toml::Table>(&experiment)
        .ok()
        .and_then(|t| t.get("rebalance").and_then(|r| r.get("band")).and_then(|b| b.as_float()));
    Ok(RunView {
        dir: dir.to_path_buf(),
        ts,
        equity,
        drawdown,
        symbols,
        prices,
        weights,
        targets,
        fills,
        trade_returns,
        regimes,
        stats,
        experiment,
        band,
    })
}
