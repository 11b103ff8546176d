//! Strategies written as rules in the experiment file (`[[signals.rules]]`): entry and exit
//! conditions over bar fields, indicators and the position, with named parameters.
//!
//! ```toml
//! [[signals.rules]]
//! entry = "rsi(14) < lo and close > sma(200)"
//! exit = "crosses_above(rsi(14), hi) or bars_in_trade >= 48"
//! params = { lo = 30, hi = 70 }
//! ```
//!
//! **Language.** Numbers (`30`, `1e-3`), `true`/`false`; bar fields `open high low close
//! volume`; position terms `bars_in_trade unrealized_return position`; the rule's `params`;
//! arithmetic `+ - * /`; comparisons `< <= > >= == !=` (not chained); `and or not`; lookback
//! `x[k]` (x, k bars ago; k a whole number >= 0 or a parameter, so no later bar can be named);
//! `x@SYMBOL` (x on another symbol of the data, on the same clock) and `x@4h`, `x@1d` (x on
//! coarser bars of the symbol; at each bar the last coarser bar that has closed by this bar's
//! close). Functions (of the close unless they take `x`): `sma(n) ema(n) rsi(n) atr(n)
//! std(n) macd(fast, slow) macd_signal(fast, slow, signal) macd_hist(fast, slow, signal)
//! bb_upper(n, k) bb_lower(n, k) momentum(n)` (n-bar return), `donchian_high(n)
//! donchian_low(n)` (the previous n bars' highest high and lowest low, as the built-in
//! donchian signal uses), `highest(x, n) lowest(x, n) mean(x, n) std(x, n)` (over the n bars
//! ending at the current one), `crosses_above(a, b) crosses_below(a, b)` (a strict cross: a
//! above b now and below it on the bar before), `abs(x) min(a, b) max(a, b)`. Indicators are the
//! built-in signals' own series, shared through the indicator cache across optimizer
//! candidates.
//!
//! **Semantics**, at each bar's close for each symbol the rules cover:
//! 1. Any NaN operand (warm-up, a bar before the data) makes the whole expression unknown,
//!    and unknown never acts: `not (rsi(14) < 30)` is not true during warm-up, nor is
//!    `a or b` while b is unknown.
//! 2. Exits first: long and `exit` true, or short and `short_exit` true, means flat. A rule
//!    that exited on this bar does not re-enter the same side on it.
//! 3. Then entries: `entry` true alone means long, `short_entry` true alone means short (a
//!    reversal when holding the other side); both true means no new position; an entry while
//!    already on that side holds.
//! 4. The side is that of the latest target (a stop or a risk halt sets it flat, and the rules
//!    may enter again on the next bar). `bars_in_trade` counts from the bar whose fill opened
//!    the position (0 there, and 0 while nothing is held); `unrealized_return` is the close over
//!    the entry price minus 1, signed by the side held.

mod compile;
mod parse;

pub use compile::{CompileError, Op, PosTerm, FUNCTIONS, NAMES};
pub use parse::{parse, BinOp, Expr, Kind, ParseError};

use super::strategy::{Action, Position, Signal, View};
use super::IndicatorCache;
use crate::data::MarketData;
use crate::experiment::RuleSignal;

/// One symbol's compiled rules.
#[derive(Debug, Clone, Default)]
pub struct Program {
    entry: Option<Op>,
    exit: Option<Op>,
    short_entry: Option<Op>,
    short_exit: Option<Op>,
}

/// Whether a rule is true at bar t (absent or unknown: false).
fn holds(op: &Option<Op>, t: usize, pos: &Position) -> bool {
    op.as_ref().is_some_and(|o| o.eval(t, pos) == 1.0)
}

impl Program {
    /// The action at bar t for a strategy in position `pos` (see the module doc).
    pub fn decide(&self, t: usize, pos: &Position) -> Action {
        let mut side = pos.side;
        let mut exited = 0;
        if side > 0 && holds(&self.exit, t, pos) {
            (side, exited) = (0, 1);
        } else if side < 0 && holds(&self.short_exit, t, pos) {
            (side, exited) = (0, -1);
        }
        let want = match (holds(&self.entry, t, pos), holds(&self.short_entry, t, pos)) {
            (true, false) if exited != 1 => 1,
            (false, true) if exited != -1 => -1,
            _ => side,
        };
        match want {
            w if w == pos.side => Action::Hold,
            1 => Action::Long,
            -1 => Action::Short,
            _ => Action::Flat,
        }
    }
}

/// A `[[signals.rules]]` entry compiled for each symbol it covers.
#[derive(Debug, Clone)]
pub struct RuleSet {
    per_sym: Vec<Option<Program>>,
}

impl Signal for RuleSet {
    fn decide(&self, v: &View) -> Action {
        match self.per_sym.get(v.sym).and_then(Option::as_ref) {
            Some(p) => p.decide(v.t, &v.pos),
            None => Action::Hold,
        }
    }
}

/// A rule that does not compile: the key (`signals.rules[0].entry`) and the message, which
/// names the column and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    /// The experiment key of the expression.
    pub key: String,
    /// What went wrong, with the column.
    pub msg: String,
}

/// An expression that is a number and reads no position, computed at every bar of symbol `sym`
/// (a model's feature); errors as "column N of \"SRC\": what was expected".
pub fn number_series(
    src: &str,
    md: &MarketData,
    cache: &IndicatorCache,
    params: &std::collections::BTreeMap<String, f64>,
    sym: usize,
) -> Result<Vec<f64>, String> {
    let e = parse(src).map_err(|e| format!("column {} of \"{src}\": {}", e.col, e.msg))?;
    compile::Compiler { md, cache, params, sym }.series_of(&e).map_err(|e| format!("column {} of \"{src}\": {}", e.col, e.msg))
}

/// Compile rule entry `index` of an experiment for the symbols `syms` of `md`.
pub fn build(cfg: &RuleSignal, index: usize, md: &MarketData, cache: &IndicatorCache, syms: &[usize]) -> Result<RuleSet, RuleError> {
    let mut per_sym = vec![None; md.symbols.len()];
    let parts = [("entry", &cfg.entry), ("exit", &cfg.exit), ("short_entry", &cfg.short_entry), ("short_exit", &cfg.short_exit)];
    let mut parsed = Vec::new();
    for (name, src) in parts {
        let key = format!("signals.rules[{index}].{name}");
        let e = match src {
            Some(s) => Some(parse(s).map_err(|e| RuleError { key: key.clone(), msg: format!("column {} of \"{s}\": {}", e.col, e.msg) })?),
            None => None,
        };
        parsed.push((key, src, e));
    }
    for &s in syms {
        let cx = compile::Compiler { md, cache, params: &cfg.params, sym: s };
        let mut ops = Vec::new();
        for (key, src, e) in &parsed {
            ops.push(match e {
                Some(e) => Some(cx.condition(e).map_err(|err| RuleError {
                    key: key.clone(),
                    msg: format!("column {} of \"{}\": {}", err.col, src.as_deref().unwrap_or_default(), err.msg),
                })?),
                None => None,
            });
        }
        let mut it = ops.into_iter();
        per_sym[s] = Some(Program {
            entry: it.next().flatten(),
            exit: it.next().flatten(),
            short_entry: it.next().flatten(),
            short_exit: it.next().flatten(),
        });
    }
    Ok(RuleSet { per_sym })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Bars, Timeframe};
    use std::collections::BTreeMap;

    fn market(close: &[f64]) -> MarketData {
        let mut b = Bars::default();
        for &c in close {
            b.push(c, c + 1.0, c - 1.0, c, 10.0, true);
        }
        MarketData {
            timeframe: Timeframe::from_ms(3_600_000),
            timestamps: (0..close.len() as i64).map(|i| i * 3_600_000).collect(),
            symbols: vec!["X".into()],
            bars: vec![b],
            calendar: None,
        }
    }

    fn eval(src: &str, close: &[f64], params: &[(&str, f64)]) -> Vec<f64> {
        let md = market(close);
        let cache = IndicatorCache::default();
        let params: BTreeMap<String, f64> = params.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        let cx = compile::Compiler { md: &md, cache: &cache, params: &params, sym: 0 };
        let op = cx.condition(&parse(src).unwrap()).unwrap();
        (0..close.len()).map(|t| op.eval(t, &Position::default())).collect()
    }

    fn compile_err(src: &str) -> String {
        let md = market(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let cache = IndicatorCache::default();
        let params = BTreeMap::from([("lo".to_string(), 30.0)]);
        let cx = compile::Compiler { md: &md, cache: &cache, params: &params, sym: 0 };
        let e = cx.condition(&parse(src).unwrap()).unwrap_err();
        format!("{}: {}", e.col, e.msg)
    }

    #[test]
    fn hand_worked_values() {
        let nan = f64::NAN;
        let close = [10.0, 12.0, 11.0, 13.0, 9.0];
        // close[1]: NaN at bar 0; close > close[1] by hand: -, 1, 0, 1, 0.
        let v = eval("close > close[k]", &close, &[("k", 1.0)]);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[1.0, 0.0, 1.0, 0.0]);
        // mean of 2 bars: 11, 11.5, 12, 11.
        let v = eval("mean(close, 2) >= 11.5", &close, &[]);
        assert_eq!(&v[1..], &[0.0, 1.0, 1.0, 0.0]);
        // Unknown propagates through not and or.
        let v = eval("not (close[2] < 11) or true", &close, &[]);
        assert!(v[0].is_nan() && v[1].is_nan());
        assert_eq!(v[2], 1.0);
        // A strict cross of close over 11.5: up at bar 3 (11 -> 13), none at bar 1 (10 -> 12? yes: 10 < 11.5 < 12).
        let v = eval("crosses_above(close, 11.5)", &close, &[]);
        assert!(v[0].is_nan());
        assert_eq!(&v[1..], &[1.0, 0.0, 1.0, 0.0]);
        // Arithmetic and precedence: (close - close[1]) / close[1] > 0.1 at bars 1 (0.2) and 3 (0.18).
        let v = eval("(close - close[1]) / close[1] > 0.1", &close, &[]);
        assert_eq!(&v[1..], &[1.0, 0.0, 1.0, 0.0]);
        let _ = nan;
    }

    #[test]
    fn errors_name_the_column_and_the_expectation() {
        assert_eq!(compile_err("rsl(14) < 30"), "1: unknown indicator or function 'rsl', did you mean rsi?");
        assert!(compile_err("close > clsoe").starts_with("9: unknown name 'clsoe', did you mean close?"));
        assert!(compile_err("close[-1] > 0").starts_with("7: a lookback counts bars back"));
        assert!(compile_err("close + 1").starts_with("1: this is a number"));
        assert!(compile_err("sma(2.5) > 0").contains("whole number"));
        assert!(compile_err("sma(5) > 0").contains("needs more bars"));
        assert!(compile_err("close@ETHUSDT > 0").contains("neither a symbol"));
        assert!(compile_err("highest(bars_in_trade, 2) > 0").contains("position terms"));
        assert!(compile_err("close and true").contains("must be a condition"));
        assert!(compile_err("rsi(lo, 3) > 0").contains("takes (n)"));
        assert!(compile_err("sma(close) > 0").contains("fixed for the run"));
    }

    #[test]
    fn rule_semantics() {
        let always = Some(Op::Const(1.0));
        let never = Some(Op::Const(0.0));
        let unknown = Some(Op::Const(f64::NAN));
        let pos = |side: i8| Position { side, ..Default::default() };
        let p = |entry: &Option<Op>, exit: &Option<Op>, se: &Option<Op>, sx: &Option<Op>| Program {
            entry: entry.clone(),
            exit: exit.clone(),
            short_entry: se.clone(),
            short_exit: sx.clone(),
        };
        // Flat: entry alone -> long; both entries -> nothing; unknown -> nothing.
        assert_eq!(p(&always, &None, &None, &None).decide(0, &pos(0)), Action::Long);
        assert_eq!(p(&always, &None, &always, &None).decide(0, &pos(0)), Action::Hold);
        assert_eq!(p(&unknown, &None, &None, &None).decide(0, &pos(0)), Action::Hold);
        // Long: entry again holds; exit wins over a same-side entry on the same bar.
        assert_eq!(p(&always, &never, &None, &None).decide(0, &pos(1)), Action::Hold);
        assert_eq!(p(&always, &always, &None, &None).decide(0, &pos(1)), Action::Flat);
        // Long: a short entry reverses; exit then short entry goes short too.
        assert_eq!(p(&never, &never, &always, &None).decide(0, &pos(1)), Action::Short);
        assert_eq!(p(&never, &always, &always, &None).decide(0, &pos(1)), Action::Short);
        // Short: short_exit then entry goes long; unknown exit holds.
        assert_eq!(p(&always, &None, &never, &always).decide(0, &pos(-1)), Action::Long);
        assert_eq!(p(&never, &None, &never, &unknown).decide(0, &pos(-1)), Action::Hold);
    }
}
