//! From a parsed [`Expr`] to an [`Op`] tree bound to one symbol's data: names resolved,
//! parameters substituted, constant parts folded, types checked (numbers vs conditions),
//! indicator series fetched from the shared [`IndicatorCache`], and everything that can be
//! computed before the run (rolling windows, coarser timeframes) computed into series. What is
//! left for the bar loop is a walk of the tree at bar t.

use super::parse::{BinOp, Expr, Kind};
use crate::data::{check_resample, resample, Bars, MarketData, SymbolSeries, Timeframe};
use crate::signals::strategy::Position;
use crate::signals::{IndKey, IndicatorCache, Series};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A compile error: 1-based column and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    /// Column in the expression.
    pub col: usize,
    /// What went wrong.
    pub msg: String,
}

/// A position term, known at the current bar only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PosTerm {
    /// Bars since the entry fill.
    BarsInTrade,
    /// close / entry price - 1, signed by direction.
    UnrealizedReturn,
    /// +1 long, -1 short, 0 flat.
    Side,
}

/// A compiled expression; numbers and conditions alike are f64 (conditions 1 or 0), NaN is
/// "unknown" (warm-up, or before the data) and propagates through every operator.
#[derive(Debug, Clone)]
pub enum Op {
    /// A constant.
    Const(f64),
    /// A series' value `lag` bars ago.
    Series(Series, usize),
    /// A position term.
    Pos(PosTerm),
    /// `-x`.
    Neg(Box<Op>),
    /// `not x`.
    Not(Box<Op>),
    /// `abs(x)`.
    Abs(Box<Op>),
    /// A binary operation (`min`/`max` are not among them: see [`Op::MinMax`]).
    Bin(BinOp, Box<Op>, Box<Op>),
    /// `min(a, b)` (false) or `max(a, b)` (true).
    MinMax(bool, Box<Op>, Box<Op>),
    /// x evaluated k bars ago.
    Ago(Box<Op>, usize),
    /// `crosses_above(a, b)` (true) or `crosses_below(a, b)` (false).
    Cross(bool, Box<Op>, Box<Op>),
}

#[inline]
fn b(x: bool) -> f64 {
    if x {
        1.0
    } else {
        0.0
    }
}

impl Op {
    /// The value at bar t given the position; NaN when unknown.
    pub fn eval(&self, t: usize, pos: &Position) -> f64 {
        match self {
            Op::Const(v) => *v,
            Op::Series(s, lag) => t.checked_sub(*lag).map_or(f64::NAN, |u| s[u]),
            Op::Pos(PosTerm::BarsInTrade) => pos.bars_in_trade as f64,
            Op::Pos(PosTerm::UnrealizedReturn) => pos.unrealized_return,
            Op::Pos(PosTerm::Side) => pos.side as f64,
            Op::Neg(x) => -x.eval(t, pos),
            Op::Not(x) => {
                let v = x.eval(t, pos);
                if v.is_nan() {
                    v
                } else {
                    b(v == 0.0)
                }
            }
            Op::Abs(x) => x.eval(t, pos).abs(),
            Op::MinMax(max, x, y) => {
                let (p, q) = (x.eval(t, pos), y.eval(t, pos));
                if p.is_nan() || q.is_nan() {
                    f64::NAN
                } else if *max {
                    p.max(q)
                } else {
                    p.min(q)
                }
            }
            Op::Bin(op, x, y) => {
                let (p, q) = (x.eval(t, pos), y.eval(t, pos));
                if p.is_nan() || q.is_nan() {
                    return f64::NAN;
                }
                match op {
                    BinOp::Add => p + q,
                    BinOp::Sub => p - q,
                    BinOp::Mul => p * q,
                    BinOp::Div => p / q,
                    BinOp::Lt => b(p < q),
                    BinOp::Le => b(p <= q),
                    BinOp::Gt => b(p > q),
                    BinOp::Ge => b(p >= q),
                    BinOp::Eq => b(p == q),
                    BinOp::Ne => b(p != q),
                    BinOp::And => b(p != 0.0 && q != 0.0),
                    BinOp::Or => b(p != 0.0 || q != 0.0),
                }
            }
            Op::Ago(x, k) => t.checked_sub(*k).map_or(f64::NAN, |u| x.eval(u, pos)),
            Op::Cross(up, x, y) => {
                let Some(u) = t.checked_sub(1) else { return f64::NAN };
                let (a1, b1, a0, b0) = (x.eval(t, pos), y.eval(t, pos), x.eval(u, pos), y.eval(u, pos));
                if a1.is_nan() || b1.is_nan() || a0.is_nan() || b0.is_nan() {
                    f64::NAN
                } else if *up {
                    b(a1 > b1 && a0 < b0)
                } else {
                    b(a1 < b1 && a0 > b0)
                }
            }
        }
    }
}

/// Whether a value is a number or a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    /// A number.
    Num,
    /// A condition (true / false / unknown).
    Bool,
}

/// A compiled node: the op, its type, and whether it reads the position.
struct C {
    op: Op,
    ty: Ty,
    stateful: bool,
}

/// The bars an expression is computed on: the symbol's own, another symbol's, or coarser bars.
#[derive(Clone, Copy)]
struct Frame<'a> {
    bars: &'a Bars,
    cache: &'a IndicatorCache,
    /// The symbol id the cache knows these bars by.
    key: usize,
    /// Whether this is a coarser timeframe (no further `@` inside).
    coarse: bool,
}

/// Coarser bars of one symbol, and for each bar of the data the last coarse bar closed by its
/// close (`usize::MAX`: none yet).
struct Coarse {
    bars: Bars,
    cache: IndicatorCache,
    known: Vec<usize>,
}

/// Names a rule may use besides its parameters, for "did you mean".
pub const NAMES: &[&str] = &["open", "high", "low", "close", "volume", "bars_in_trade", "unrealized_return", "position", "true", "false"];

/// Functions and indicators: name and the arguments they take.
pub const FUNCTIONS: &[(&str, &str)] = &[
    ("sma", "n"),
    ("ema", "n"),
    ("rsi", "n"),
    ("atr", "n"),
    ("std", "n | x, n"),
    ("macd", "fast, slow"),
    ("macd_signal", "fast, slow, signal"),
    ("macd_hist", "fast, slow, signal"),
    ("bb_upper", "n, k"),
    ("bb_lower", "n, k"),
    ("momentum", "n"),
    ("donchian_high", "n"),
    ("donchian_low", "n"),
    ("highest", "x, n"),
    ("lowest", "x, n"),
    ("mean", "x, n"),
    ("crosses_above", "a, b"),
    ("crosses_below", "a, b"),
    ("abs", "x"),
    ("min", "a, b"),
    ("max", "a, b"),
];

fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + usize::from(a[i - 1] != b[j - 1]));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// ", did you mean X?" for the nearest candidate within two edits, or nothing.
fn did_you_mean<'a>(w: &str, candidates: impl Iterator<Item = &'a str>) -> String {
    candidates.map(|c| (distance(w, c), c)).filter(|(d, _)| *d <= 2).min().map_or(String::new(), |(_, c)| format!(", did you mean {c}?"))
}

/// Compiles expressions for one symbol of `md`.
pub struct Compiler<'a> {
    /// The data.
    pub md: &'a MarketData,
    /// The shared indicator cache of `md`.
    pub cache: &'a IndicatorCache,
    /// The rule's parameters.
    pub params: &'a BTreeMap<String, f64>,
    /// The symbol id.
    pub sym: usize,
}

fn err<T>(col: usize, msg: impl Into<String>) -> Result<T, CompileError> {
    Err(CompileError { col, msg: msg.into() })
}

impl Compiler<'_> {
    /// Compile a condition (an entry or exit rule).
    pub fn condition(&self, e: &Expr) -> Result<Op, CompileError> {
        let frame = Frame { bars: &self.md.bars[self.sym], cache: self.cache, key: self.sym, coarse: false };
        let c = self.node(e, frame)?;
        if c.ty != Ty::Bool {
            return err(e.col, "this is a number, and a rule must be a condition (e.g. rsi(14) < 30)");
        }
        Ok(c.op)
    }

    /// Compile a number that reads no position (a model's feature) and compute it at every bar.
    pub fn series_of(&self, e: &Expr) -> Result<Vec<f64>, CompileError> {
        let frame = Frame { bars: &self.md.bars[self.sym], cache: self.cache, key: self.sym, coarse: false };
        let c = self.num(e, frame, "a feature")?;
        let op = self.stateless(c, e.col, "a feature")?;
        Ok(Self::materialize(&op, self.md.len()))
    }

    fn num(&self, e: &Expr, f: Frame, what: &str) -> Result<C, CompileError> {
        let c = self.node(e, f)?;
        if c.ty != Ty::Num {
            return err(e.col, format!("{what} must be a number, not a condition"));
        }
        Ok(c)
    }

    fn boolean(&self, e: &Expr, f: Frame, what: &str) -> Result<C, CompileError> {
        let c = self.node(e, f)?;
        if c.ty != Ty::Bool {
            return err(e.col, format!("{what} must be a condition, not a number"));
        }
        Ok(c)
    }

    /// A constant argument (a number, a parameter, or arithmetic of them).
    fn constant(&self, e: &Expr, f: Frame, what: &str) -> Result<f64, CompileError> {
        match self.num(e, f, what)?.op {
            Op::Const(v) => Ok(v),
            _ => err(e.col, format!("{what} must be a number or a parameter, fixed for the run")),
        }
    }

    /// A window: a whole number >= `min` and shorter than the frame's bars.
    fn window(&self, e: &Expr, f: Frame, fname: &str, min: usize) -> Result<usize, CompileError> {
        let v = self.constant(e, f, &format!("{fname}'s window"))?;
        if !(v.fract() == 0.0 && v >= min as f64) {
            return err(e.col, format!("{fname}'s window must be a whole number >= {min}, not {v}"));
        }
        let n = v as usize;
        if n >= f.bars.len() {
            return err(e.col, format!("{fname}({n}) needs more bars than the {} there are: it would never have a value", f.bars.len()));
        }
        Ok(n)
    }

    fn series(&self, f: Frame, key: IndKey) -> C {
        C { op: Op::Series(f.cache.get(f.key, f.bars, key), 0), ty: Ty::Num, stateful: false }
    }

    /// A stateless op evaluated at every bar of the frame.
    fn materialize(op: &Op, len: usize) -> Vec<f64> {
        let flat = Position::default();
        (0..len).map(|t| op.eval(t, &flat)).collect()
    }

    fn stateless(&self, c: C, col: usize, what: &str) -> Result<Op, CompileError> {
        if c.stateful {
            return err(
                col,
                format!(
                    "{what} cannot use position terms (bars_in_trade, unrealized_return, position): they are known at the current bar only"
                ),
            );
        }
        Ok(c.op)
    }

    fn node(&self, e: &Expr, f: Frame) -> Result<C, CompileError> {
        let num = |op: Op, stateful: bool| C { op, ty: Ty::Num, stateful };
        let cond = |op: Op, stateful: bool| C { op, ty: Ty::Bool, stateful };
        Ok(match &e.kind {
            Kind::Num(v) => num(Op::Const(*v), false),
            Kind::Bool(v) => cond(Op::Const(b(*v)), false),
            Kind::Name(w) => {
                // A bar field as a series of its own, copied once per data and shared.
                let field = |v: &Vec<f64>| {
                    let s: Series = f.cache.shared(format!("rules field {} {w}", f.key), || v.clone());
                    num(Op::Series(s, 0), false)
                };
                match w.as_str() {
                    "open" => field(&f.bars.open),
                    "high" => field(&f.bars.high),
                    "low" => field(&f.bars.low),
                    "close" => field(&f.bars.close),
                    "volume" => field(&f.bars.volume),
                    "bars_in_trade" | "unrealized_return" | "position" if f.key != self.sym || f.coarse => {
                        return err(e.col, format!("{w} is this symbol's position, at the current bar: it cannot be used inside '@'"));
                    }
                    "bars_in_trade" => num(Op::Pos(PosTerm::BarsInTrade), true),
                    "unrealized_return" => num(Op::Pos(PosTerm::UnrealizedReturn), true),
                    "position" => num(Op::Pos(PosTerm::Side), true),
                    _ => match self.params.get(w) {
                        Some(v) => num(Op::Const(*v), false),
                        None => {
                            let hint = did_you_mean(w, NAMES.iter().copied().chain(self.params.keys().map(String::as_str)));
                            let params = if self.params.is_empty() {
                                "no params are set".to_string()
                            } else {
                                format!("params: {}", self.params.keys().cloned().collect::<Vec<_>>().join(", "))
                            };
                            return err(e.col, format!("unknown name '{w}'{hint} (bar fields: open, high, low, close, volume; position: bars_in_trade, unrealized_return, position; {params})"));
                        }
                    },
                }
            }
            Kind::Neg(x) => {
                let c = self.num(x, f, "the operand of '-'")?;
                match c.op {
                    Op::Const(v) => num(Op::Const(-v), false),
                    op => num(Op::Neg(Box::new(op)), c.stateful),
                }
            }
            Kind::Not(x) => {
                let c = self.boolean(x, f, "the operand of 'not'")?;
                cond(Op::Not(Box::new(c.op)), c.stateful)
            }
            Kind::Bin(op, x, y) => {
                let logic = matches!(op, BinOp::And | BinOp::Or);
                let word = match op {
                    BinOp::And => "and",
                    BinOp::Or => "or",
                    _ => "this operator",
                };
                let (l, r) = if logic {
                    (self.boolean(x, f, &format!("each side of '{word}'"))?, self.boolean(y, f, &format!("each side of '{word}'"))?)
                } else {
                    (self.num(x, f, "each side of a comparison or arithmetic")?, self.num(y, f, "each side of a comparison or arithmetic")?)
                };
                let ty = if matches!(op, BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div) { Ty::Num } else { Ty::Bool };
                let stateful = l.stateful || r.stateful;
                let op = match (l.op, r.op) {
                    (Op::Const(p), Op::Const(q)) => {
                        Op::Const(Op::Bin(*op, Box::new(Op::Const(p)), Box::new(Op::Const(q))).eval(0, &Position::default()))
                    }
                    (a, c) => Op::Bin(*op, Box::new(a), Box::new(c)),
                };
                C { op, ty, stateful }
            }
            Kind::Ago(x, k) => {
                let kv = self.constant(k, f, "a lookback")?;
                if !(kv.fract() == 0.0 && kv >= 0.0) {
                    return err(
                        k.col,
                        format!("a lookback counts bars back: a whole number >= 0, not {kv} (no bar after the current one can be read)"),
                    );
                }
                let k = kv as usize;
                let c = self.node(x, f)?;
                let ty = c.ty;
                let op = match self.stateless(c, x.col, "a lookback")? {
                    Op::Series(s, lag) => Op::Series(s, lag + k),
                    Op::Const(v) => Op::Const(v),
                    op => Op::Ago(Box::new(op), k),
                };
                C { op, ty, stateful: false }
            }
            Kind::At(x, ctx, col) => self.at(x, ctx, *col, f)?,
            Kind::Call(name, args) => self.call(e, name, args, f)?,
        })
    }

    fn at(&self, x: &Expr, ctx: &str, col: usize, f: Frame) -> Result<C, CompileError> {
        if f.coarse || f.key != self.sym {
            return err(
                col,
                "one '@' per expression part: write x@SYMBOL or x@1d, or compute on coarser bars of another symbol with a single part",
            );
        }
        if let Ok(tf) = ctx.parse::<Timeframe>() {
            if ctx.starts_with(|c: char| c.is_ascii_digit()) {
                return self.coarse(x, tf, col);
            }
        }
        let Some(other) = self.md.symbol_id(ctx) else {
            let hint = did_you_mean(ctx, self.md.symbols.iter().map(String::as_str));
            return err(
                col + 1,
                format!("'{ctx}' is neither a symbol in the data ({}){hint} nor a timeframe such as 4h or 1d", self.md.symbols.join(", ")),
            );
        };
        let c = self.node(x, Frame { bars: &self.md.bars[other], cache: self.cache, key: other, coarse: false })?;
        Ok(c)
    }

    fn coarse(&self, x: &Expr, tf: Timeframe, col: usize) -> Result<C, CompileError> {
        let md = self.md;
        if let Err(why) = check_resample(md.timeframe, tf) {
            return err(col + 1, format!("cannot compute on {tf} bars: {why}"));
        }
        if tf == md.timeframe {
            return err(col + 1, format!("{tf} is the data's own timeframe: drop the '@{tf}'"));
        }
        let sym = self.sym;
        let co: Arc<Coarse> = self.cache.shared(format!("rules coarse bars {sym} {tf}"), || {
            let series = SymbolSeries {
                symbol: md.symbols[sym].clone(),
                source: Default::default(),
                ts: md.timestamps.clone(),
                bars: md.bars[sym].clone(),
            };
            let r = resample(&series, tf);
            // A coarse bar is known from the close of the first bar of the data that closes at or
            // after its end.
            let mut known = vec![usize::MAX; md.len()];
            let mut g = 0;
            let mut last = usize::MAX;
            for (t, &ts) in md.timestamps.iter().enumerate() {
                let closes = ts + md.timeframe.ms;
                while g < r.ts.len() && r.ts[g] + tf.ms <= closes {
                    last = g;
                    g += 1;
                }
                known[t] = last;
            }
            Coarse { bars: r.bars, cache: IndicatorCache::default(), known }
        });
        let frame = Frame { bars: &co.bars, cache: &co.cache, key: 0, coarse: true };
        let c = self.node(x, frame)?;
        let ty = c.ty;
        let op = self.stateless(c, x.col, "a value on coarser bars")?;
        let on_coarse = Self::materialize(&op, co.bars.len());
        let fine: Vec<f64> = co.known.iter().map(|&g| if g == usize::MAX { f64::NAN } else { on_coarse[g] }).collect();
        Ok(C { op: Op::Series(Arc::new(fine), 0), ty, stateful: false })
    }

    fn call(&self, e: &Expr, name: &str, args: &[Expr], f: Frame) -> Result<C, CompileError> {
        let Some((_, takes)) = FUNCTIONS.iter().find(|(n, _)| *n == name) else {
            let hint = did_you_mean(name, FUNCTIONS.iter().map(|(n, _)| *n));
            if NAMES.contains(&name) || self.params.contains_key(name) {
                return err(e.col, format!("{name} is a value, not a function: drop the '(...)'"));
            }
            return err(e.col, format!("unknown indicator or function '{name}'{hint}"));
        };
        let arity: Vec<usize> = takes.split(" | ").map(|a| a.split(", ").count()).collect();
        if !arity.contains(&args.len()) {
            return err(e.col, format!("{name} takes ({takes}), not {} argument(s)", args.len()));
        }
        let num = |op: Op| C { op, ty: Ty::Num, stateful: false };
        let w = |i: usize, min: usize| self.window(&args[i], f, name, min);
        Ok(match (name, args.len()) {
            ("sma", 1) => self.series(f, IndKey::Sma(w(0, 1)?)),
            ("ema", 1) => self.series(f, IndKey::Ema(w(0, 1)?)),
            ("rsi", 1) => self.series(f, IndKey::Rsi(w(0, 2)?)),
            ("atr", 1) => self.series(f, IndKey::Atr(w(0, 1)?)),
            ("std", 1) => self.series(f, IndKey::Std(w(0, 1)?)),
            ("momentum", 1) => {
                let n = w(0, 1)?;
                let c = &f.bars.close;
                num(Op::Series(Arc::new((0..c.len()).map(|i| if i < n { f64::NAN } else { c[i] / c[i - n] - 1.0 }).collect()), 0))
            }
            ("donchian_high", 1) => self.series(f, IndKey::PrevMax(w(0, 1)?)),
            ("donchian_low", 1) => self.series(f, IndKey::PrevMin(w(0, 1)?)),
            ("macd", 2) | ("macd_signal", 3) | ("macd_hist", 3) => {
                let (fast, slow) = (w(0, 1)?, w(1, 2)?);
                if fast >= slow {
                    return err(args[0].col, format!("{name}: fast ({fast}) must be < slow ({slow})"));
                }
                let line = f.cache.get(f.key, f.bars, IndKey::MacdLine(fast, slow));
                if name == "macd" {
                    return Ok(num(Op::Series(line, 0)));
                }
                let sig = f.cache.get(f.key, f.bars, IndKey::MacdSignal(fast, slow, w(2, 1)?));
                if name == "macd_signal" {
                    return Ok(num(Op::Series(sig, 0)));
                }
                num(Op::Series(Arc::new(line.iter().zip(sig.iter()).map(|(l, s)| l - s).collect()), 0))
            }
            ("bb_upper", 2) | ("bb_lower", 2) => {
                let n = w(0, 2)?;
                let k = self.constant(&args[1], f, &format!("{name}'s width"))?;
                if !(k > 0.0 && k.is_finite()) {
                    return err(args[1].col, format!("{name}'s width is in standard deviations, > 0, not {k}"));
                }
                let side = if name == "bb_upper" { 1.0 } else { -1.0 };
                let (m, sd) = (f.cache.get(f.key, f.bars, IndKey::Sma(n)), f.cache.get(f.key, f.bars, IndKey::Std(n)));
                num(Op::Series(Arc::new(m.iter().zip(sd.iter()).map(|(m, s)| m + side * k * s).collect()), 0))
            }
            ("highest", 2) | ("lowest", 2) | ("mean", 2) | ("std", 2) => {
                let c = self.num(&args[0], f, &format!("{name}'s first argument"))?;
                let op = self.stateless(c, args[0].col, &format!("{name}()"))?;
                let n = w(1, 1)?;
                let x = Self::materialize(&op, f.bars.len());
                num(Op::Series(Arc::new(rolling(&x, n, name)), 0))
            }
            ("crosses_above", 2) | ("crosses_below", 2) => {
                let a = self.num(&args[0], f, &format!("{name}'s arguments"))?;
                let a = self.stateless(a, args[0].col, &format!("{name}()"))?;
                let c = self.num(&args[1], f, &format!("{name}'s arguments"))?;
                let c = self.stateless(c, args[1].col, &format!("{name}()"))?;
                C { op: Op::Cross(name == "crosses_above", Box::new(a), Box::new(c)), ty: Ty::Bool, stateful: false }
            }
            ("abs", 1) => {
                let c = self.num(&args[0], f, "abs' argument")?;
                match c.op {
                    Op::Const(v) => num(Op::Const(v.abs())),
                    op => C { op: Op::Abs(Box::new(op)), ty: Ty::Num, stateful: c.stateful },
                }
            }
            ("min", 2) | ("max", 2) => {
                let (a, c) =
                    (self.num(&args[0], f, &format!("{name}'s arguments"))?, self.num(&args[1], f, &format!("{name}'s arguments"))?);
                let stateful = a.stateful || c.stateful;
                C { op: Op::MinMax(name == "max", Box::new(a.op), Box::new(c.op)), ty: Ty::Num, stateful }
            }
            _ => return err(e.col, format!("{name} takes ({takes})")),
        })
    }
}

/// A rolling window of n values ending at each bar (the current one included): the highest,
/// lowest, mean or population standard deviation; NaN until n values, and wherever the window
/// holds a NaN.
fn rolling(x: &[f64], n: usize, kind: &str) -> Vec<f64> {
    let mut out = vec![f64::NAN; x.len()];
    for t in n.saturating_sub(1)..x.len() {
        let w = &x[t + 1 - n..=t];
        if w.iter().any(|v| v.is_nan()) {
            continue;
        }
        out[t] = match kind {
            "highest" => w.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            "lowest" => w.iter().copied().fold(f64::INFINITY, f64::min),
            _ => {
                let m = w.iter().sum::<f64>() / n as f64;
                if kind == "mean" {
                    m
                } else {
                    (w.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64).sqrt()
                }
            }
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolling_by_hand() {
        let x = [1.0, 3.0, 2.0, f64::NAN, 5.0, 4.0, 6.0];
        let h = rolling(&x, 2, "highest");
        assert!(h[0].is_nan() && h[3].is_nan() && h[4].is_nan());
        assert_eq!((h[1], h[2], h[5], h[6]), (3.0, 3.0, 5.0, 6.0));
        assert_eq!(rolling(&x, 3, "lowest")[2], 1.0);
        assert_eq!(rolling(&x, 2, "mean")[6], 5.0);
        assert_eq!(rolling(&x, 2, "std")[6], 1.0); // {4, 6}: deviations 1
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("rsl", FUNCTIONS.iter().map(|(n, _)| *n)), ", did you mean rsi?");
        assert_eq!(did_you_mean("clsoe", NAMES.iter().copied()), ", did you mean close?");
        assert_eq!(did_you_mean("zzzzzz", NAMES.iter().copied()), "");
    }
}
