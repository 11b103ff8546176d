//! The execution simulator: orders, when they may fill, at what price, for how much, and what
//! it costs (maker/taker fees in bps plus a fixed fee, slippage in bps plus a volume-impact
//! term, volume participation cap with the rest carried over, lot size, minimum quantity and
//! notional).
//!
//! Prices: a market order fills at the timing's price (open or close) moved against the trader
//! by `slippage_bps + impact_bps * min(qty / bar volume, 1)`. A buy limit fills when the bar's
//! low reaches the limit, at the limit or the open if lower (sells mirrored), with the maker
//! fee and no slippage.
//!
//! Sizing, one rule for both sides. A target fraction `f` of equity becomes a quantity only when
//! it fills, at the fill price `p` (slippage included), fee rate `r` and fixed fee `F`: the
//! target position `q` is the largest (in absolute value) whose notional plus the fee of the
//! order fits in `|f| * E`, i.e. `|q| p + r p |q - cur| + F <= |f| E`, where `E` is the equity
//! at the fill (cash plus every position at its mark). On a reversal (`f` and the current
//! position `cur` of opposite signs) the closing leg comes first: `E` is the equity after it,
//! less its fee and slippage, and `q` is sized from flat. From flat this is
//! `|q| = (|f| E - F) / (p (1 + r))`. Lots round the target position toward zero, then the order
//! is the difference `q - cur`; longs and shorts mirror each other exactly. The side of the
//! order sets the slippage in `p`; a target that only the slippage moves across the position
//! (buying at the slipped price would call for a sale, and selling for a purchase) trades nothing. A target quantity
//! (`sizing = "fixed_quantity"`) is rounded to the lot the same way. A buy is never larger than
//! cash allows after its fee (with several symbols, cash may be held elsewhere): a fraction is
//! trimmed to it, a target quantity is rejected whole (as backtesting.py and backtrader do).
//! `|f| > 1` would need margin, which is not modelled, so validation refuses it.

use crate::experiment::ExecutionConfig;
use crate::portfolio::Reason;

/// How much an order asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// Hold this signed fraction of equity in the symbol after the fill.
    TargetFraction(f64),
    /// Hold this signed quantity after the fill.
    TargetQty(f64),
    /// Trade this signed quantity.
    Qty(f64),
}

/// Price condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PriceType {
    /// Any price.
    Market,
    /// This price or better.
    Limit(f64),
    /// Becomes a market order once the price trades through this level.
    Stop(f64),
}

/// A pending order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
    /// Id (also the index in the order log).
    pub id: u64,
    /// Symbol id.
    pub sym: usize,
    /// Requested size.
    pub size: Size,
    /// Price condition.
    pub price: PriceType,
    /// First bar it may fill on.
    pub bar: usize,
    /// Whether it fills at that bar's close (else its open, or intrabar for limits).
    pub at_close: bool,
    /// Last bar it may fill on (None = good till cancelled).
    pub expires: Option<usize>,
    /// Why it was sent.
    pub reason: Reason,
}

/// What became of an order, for `orders.csv`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Waiting.
    Pending,
    /// Filled completely.
    Filled,
    /// Filled in part; the rest is still waiting or expired.
    Partial,
    /// Refused (too small, no cash, risk limit).
    Rejected,
    /// Time in force ran out.
    Expired,
    /// Replaced by a newer order for the same symbol.
    Cancelled,
}

/// One line of the order log.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    /// The order as submitted.
    pub order: Order,
    /// Bar it was decided at.
    pub created: usize,
    /// Quantity filled so far.
    pub filled_qty: f64,
    /// Final state.
    pub status: Status,
    /// Why rejected, if it was.
    pub note: String,
}

/// Costs and constraints of fills, from `[execution]`, as rates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// Taker fee rate.
    pub taker: f64,
    /// Maker fee rate.
    pub maker: f64,
    /// Fixed fee per fill.
    pub fixed: f64,
    /// Slippage rate.
    pub slip: f64,
    /// Impact rate per unit of participation.
    pub impact: f64,
    /// Lot size (0 = none).
    pub lot: f64,
    /// Minimum notional.
    pub min_notional: f64,
    /// Minimum quantity.
    pub min_qty: f64,
    /// Max fraction of bar volume.
    pub max_part: Option<f64>,
}

impl Costs {
    /// From the experiment's `[execution]`.
    pub fn from_config(x: &ExecutionConfig) -> Self {
        Costs {
            taker: x.fee_bps / 1e4,
            maker: x.maker_fee_bps.unwrap_or(x.fee_bps) / 1e4,
            fixed: x.fixed_fee,
            slip: x.slippage_bps / 1e4,
            impact: x.impact_bps / 1e4,
            lot: x.lot_size,
            min_notional: x.min_notional,
            min_qty: x.min_qty,
            max_part: x.max_participation,
        }
    }
}

/// Result of trying to fill an order on one bar.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// Nothing to do (already at target).
    Done,
    /// Filled `qty` at `price` paying `fee`; `rest` (signed) still to trade.
    Fill {
        /// Signed quantity.
        qty: f64,
        /// Price with slippage.
        price: f64,
        /// Fee.
        fee: f64,
        /// Signed quantity left for later bars (participation cap).
        rest: f64,
    },
    /// Refused; the reason.
    Reject(&'static str),
}

/// Size and price one fill. `raw` is the reference price (open, close or limit level), `maker`
/// whether the fill provides liquidity (limit, take-profit), `equity` and `cash` the book at
/// this moment (positions at their marks), `volume` the bar's volume. See the module doc for
/// the sizing rule.
#[allow(clippy::too_many_arguments)]
pub fn fill(size: Size, cur: f64, raw: f64, maker: bool, equity: f64, cash: f64, volume: f64, c: &Costs) -> Outcome {
    // The side and the participation come from the order's size at the raw price; the price
    // they give then sizes the order.
    let rough = match size {
        Size::TargetFraction(f) => f * equity.max(0.0) / raw - cur,
        Size::TargetQty(q) => q - cur,
        Size::Qty(q) => q,
    };
    if rough.abs() <= crate::portfolio::QTY_EPS * (1.0 + cur.abs()) {
        return Outcome::Done;
    }
    let capped = c.max_part.map_or(rough.abs(), |p| rough.abs().min(p * volume));
    let (fee_rate, slip) = if maker {
        (c.maker, 0.0)
    } else {
        // Without impact the participation (always in [0, 1]: `min` passes over NaN) adds a
        // zero: no division for it.
        let impact = if c.impact == 0.0 {
            0.0
        } else {
            let part = if volume > 0.0 { (capped / volume).min(1.0) } else { 1.0 };
            c.impact * part
        };
        (c.taker, c.slip + impact)
    };
    let lot_floor = |x: f64| if c.lot > 0.0 { x.signum() * (x.abs() / c.lot + 1e-9).floor() * c.lot } else { x };
    let sized = |side: f64| {
        let price = raw * (1.0 + slip * side);
        let delta = match size {
            Size::TargetFraction(f) => {
                lot_floor(f.signum() * target_abs(f.abs(), cur * f.signum(), raw, price, fee_rate, c.fixed, equity)) - cur
            }
            Size::TargetQty(q) => lot_floor(q) - cur,
            Size::Qty(q) => lot_floor(q),
        };
        (price, delta)
    };
    // A target this close to the position can land on the other side once the slippage is in
    // the price: then it is sized again at that side's price, and left alone if it flips back.
    let (mut price, mut delta) = sized(rough.signum());
    if delta * rough < 0.0 {
        (price, delta) = sized(-rough.signum());
        if delta * rough > 0.0 {
            return Outcome::Done;
        }
    }
    if delta.abs() <= crate::portfolio::QTY_EPS * (1.0 + cur.abs()) {
        return Outcome::Done;
    }
    let mut rest = 0.0;
    if let Some(p) = c.max_part {
        let cap = p * volume;
        if delta.abs() > cap {
            rest = delta - cap * delta.signum();
            delta = lot_floor(cap * delta.signum());
        }
    }
    if delta > 0.0 {
        let affordable = ((cash - c.fixed) / (price * (1.0 + fee_rate))).max(0.0);
        if delta > affordable {
            // A quantity asked for in units is refused whole, as backtesting.py and backtrader
            // refuse it; a fraction of equity is trimmed to what cash holds.
            if matches!(size, Size::TargetQty(_)) {
                return Outcome::Reject("insufficient cash for the quantity");
            }
            delta = lot_floor(affordable);
            rest = 0.0;
        }
    }
    if delta.abs() < c.min_qty || delta.abs() == 0.0 {
        return Outcome::Reject("below min_qty or lot size");
    }
    if delta.abs() * price < c.min_notional {
        return Outcome::Reject("below min_notional");
    }
    let fee = delta.abs() * price * fee_rate + c.fixed;
    Outcome::Fill { qty: delta, price, fee, rest }
}

/// The size `|q|` of a target fraction `frac` (> 0 or 0) of equity, before lots. `held` is the
/// current position signed relative to the target's side (negative on a reversal), `raw` the
/// mark it is valued at in `equity`, `price` the fill price, `r` the fee rate, `fixed` the fixed
/// fee: the largest `|q|` with `|q| price + r price ||q| - held| + fixed <= frac * E`.
fn target_abs(frac: f64, held: f64, raw: f64, price: f64, r: f64, fixed: f64, equity: f64) -> f64 {
    if frac == 0.0 {
        return 0.0;
    }
    let (e, held) = if held < 0.0 {
        // The closing leg first: its fee and the slippage against the mark leave the book.
        (equity - held.abs() * (price * r + (raw - price).abs()), 0.0)
    } else {
        (equity, held)
    };
    let budget = frac * e.max(0.0) - fixed;
    if budget >= held * price {
        ((budget + r * price * held) / (price * (1.0 + r))).max(0.0)
    } else if r < 1.0 {
        ((budget - r * price * held) / (price * (1.0 - r))).max(0.0)
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs() -> Costs {
        Costs {
            taker: 0.001,
            maker: 0.0005,
            fixed: 0.0,
            slip: 0.0,
            impact: 0.0,
            lot: 0.0,
            min_notional: 0.0,
            min_qty: 1e-8,
            max_part: None,
        }
    }

    #[test]
    fn all_in_buy_leaves_room_for_its_fee() {
        let Outcome::Fill { qty, fee, .. } = fill(Size::TargetFraction(1.0), 0.0, 50.0, false, 100.0, 100.0, 1e9, &costs()) else {
            panic!()
        };
        assert!((qty - 100.0 / 1.001 / 50.0).abs() < 1e-12);
        assert!((qty * 50.0 + fee - 100.0).abs() < 1e-9);
    }

    fn fill_qty(size: Size, cur: f64, raw: f64, equity: f64, cash: f64, c: &Costs) -> f64 {
        match fill(size, cur, raw, false, equity, cash, 1e9, c) {
            Outcome::Fill { qty, .. } => qty,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn shorts_and_longs_from_flat_mirror_each_other() {
        let c = costs();
        let long = fill_qty(Size::TargetFraction(1.0), 0.0, 50.0, 100.0, 100.0, &c);
        let short = fill_qty(Size::TargetFraction(-1.0), 0.0, 50.0, 100.0, 100.0, &c);
        assert_eq!(short, -long);
        assert!((long - 100.0 / (50.0 * 1.001)).abs() < 1e-12);
    }

    #[test]
    fn a_reversal_sizes_the_new_side_on_the_equity_left_after_the_closing_leg() {
        // Long 10 at a mark of 100, no cash: equity 1000. Closing costs 10 * 100 * 0.001 = 1,
        // leaving 999, of which the short takes 999 / (100 * 1.001) units.
        let c = costs();
        let q = fill_qty(Size::TargetFraction(-1.0), 10.0, 100.0, 1000.0, 0.0, &c);
        assert!((q - (-10.0 - 999.0 / 100.1)).abs() < 1e-12);
        // Whole units: the target rounds toward zero to -9, so the order is -19.
        let q = fill_qty(Size::TargetFraction(-1.0), 10.0, 100.0, 1000.0, 0.0, &Costs { lot: 1.0, ..c });
        assert_eq!(q, -19.0);
    }

    #[test]
    fn lots_round_the_target_position_not_the_order() {
        // From +52.5 to a target of -51.95 units (no fee: equity after closing is 5195 at 100):
        // the position lands on -51, a whole lot; flooring the order (-104.45) would give -51.5.
        let c = Costs { taker: 0.0, lot: 1.0, ..costs() };
        let q = fill_qty(Size::TargetFraction(-1.0), 52.5, 100.0, 5195.0, 5195.0 - 5250.0, &c);
        assert_eq!(52.5 + q, -51.0);
        let q = fill_qty(Size::TargetQty(-2.7), 1.0, 10.0, 1e6, 1e6, &Costs { lot: 0.5, ..costs() });
        assert_eq!(q, -3.5);
    }

    #[test]
    fn reducing_a_position_keeps_its_value_and_fee_within_the_target() {
        // Long 10 at 100, equity 1000, target half: |q| 100 + 0.001 * 100 * (10 - |q|) = 500.
        let q = 10.0 + fill_qty(Size::TargetFraction(0.5), 10.0, 100.0, 1000.0, 0.0, &costs());
        assert!((q - 499.0 / 99.9).abs() < 1e-12);
        assert!((q * 100.0 + 0.1 * (10.0 - q) - 500.0).abs() < 1e-9);
    }

    #[test]
    fn a_quantity_cash_cannot_pay_for_is_refused_whole() {
        // 2 units at 50 with a 0.1% fee cost 100.1; 100 of cash is not enough.
        let out = fill(Size::TargetQty(2.0), 0.0, 50.0, false, 100.0, 100.0, 1e9, &costs());
        assert_eq!(out, Outcome::Reject("insufficient cash for the quantity"));
        assert_eq!(fill_qty(Size::TargetQty(2.0), 0.0, 50.0, 100.1, 100.1, &costs()), 2.0);
    }

    #[test]
    fn a_target_inside_the_slippage_is_sized_at_the_side_it_trades() {
        // Long 10 at a mark of 100, 1 of cash, 1% slippage, no fee; target 100% of 1001. At the
        // buy price 101 the target is 9.91 units, a sale; at the sale price 99 it is 10.11, a
        // purchase: inside the slippage band, so nothing trades rather than a sale at 101.
        let c = Costs { taker: 0.0, slip: 0.01, ..costs() };
        assert_eq!(fill(Size::TargetFraction(1.0), 10.0, 100.0, false, 1001.0, 1.0, 1e9, &c), Outcome::Done);
        // Half the book is a sale at 99: 1001 * 0.5 / 99 = 5.0556 units kept.
        let Outcome::Fill { qty, price, .. } = fill(Size::TargetFraction(0.5), 10.0, 100.0, false, 1001.0, 1.0, 1e9, &c) else { panic!() };
        assert_eq!(price, 99.0);
        assert!((10.0 + qty - 500.5 / 99.0).abs() < 1e-12);
    }

    #[test]
    fn a_fixed_fee_comes_out_of_the_budget() {
        let c = Costs { taker: 0.0, fixed: 1.0, ..costs() };
        let q = fill_qty(Size::TargetFraction(1.0), 0.0, 100.0, 1000.0, 1000.0, &c);
        assert!((q - 9.99).abs() < 1e-12);
    }

    #[test]
    fn slippage_lot_and_min_notional() {
        let c = Costs { slip: 0.01, lot: 0.5, min_notional: 10.0, ..costs() };
        // target 2.7 units at 10 -> 2.5 after lots; buy price 10.1
        let Outcome::Fill { qty, price, .. } = fill(Size::Qty(2.7), 0.0, 10.0, false, 1e6, 1e6, 1e9, &c) else { panic!() };
        assert_eq!((qty, price), (2.5, 10.1));
        assert_eq!(fill(Size::Qty(0.7), 0.0, 10.0, false, 1e6, 1e6, 1e9, &c), Outcome::Reject("below min_notional"));
        let Outcome::Fill { price, .. } = fill(Size::Qty(-2.0), 0.0, 10.0, false, 1e6, 1e6, 1e9, &c) else { panic!() };
        assert!((price - 9.9).abs() < 1e-12);
    }

    #[test]
    fn participation_cap_carries_the_rest() {
        let c = Costs { max_part: Some(0.1), ..costs() };
        let Outcome::Fill { qty, rest, .. } = fill(Size::Qty(-30.0), 0.0, 10.0, false, 1e6, 1e6, 100.0, &c) else { panic!() };
        assert_eq!((qty, rest), (-10.0, -20.0));
    }
}
