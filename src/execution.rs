//! The execution simulator: orders, when they may fill, at what price, for how much, and what
//! it costs (maker/taker fees in bps plus a fixed fee, slippage in bps plus a volume-impact
//! term, volume participation cap with the rest carried over, lot size, minimum quantity and
//! notional).
//!
//! Prices: a market order fills at the timing's price (open or close) moved against the trader
//! by `slippage_bps + impact_bps * min(qty / bar volume, 1)`. A buy limit fills when the bar's
//! low reaches the limit, at the limit or the open if lower (sells mirrored), with the maker
//! fee and no slippage. A target-fraction order becomes a quantity only when it fills: against
//! the fill price and the equity at that moment, leaving room for its own fee, so an all-in buy
//! never overdraws cash (a buy of all cash `c` with fee rate `f` gets `c / (1 + f) / price`).

use crate::experiment::ExecutionConfig;
use crate::portfolio::Reason;

/// How much an order asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Size {
    /// Hold this signed fraction of equity in the symbol after the fill.
    TargetFraction(f64),
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
/// this moment, `volume` the bar's volume.
#[allow(clippy::too_many_arguments)]
pub fn fill(size: Size, cur: f64, raw: f64, maker: bool, equity: f64, cash: f64, volume: f64, c: &Costs) -> Outcome {
    let mut delta = match size {
        Size::TargetFraction(f) => f * equity.max(0.0) / raw - cur,
        Size::Qty(q) => q,
    };
    if delta.abs() <= crate::portfolio::QTY_EPS * (1.0 + cur.abs()) {
        return Outcome::Done;
    }
    let mut rest = 0.0;
    if let Some(p) = c.max_part {
        let cap = p * volume;
        if delta.abs() > cap {
            rest = delta - cap * delta.signum();
            delta = cap * delta.signum();
        }
    }
    let (fee_rate, slip) = if maker {
        (c.maker, 0.0)
    } else {
        let part = if volume > 0.0 { (delta.abs() / volume).min(1.0) } else { 1.0 };
        (c.taker, c.slip + c.impact * part)
    };
    let price = raw * (1.0 + slip * delta.signum());
    if delta > 0.0 {
        let affordable = ((cash - c.fixed) / (price * (1.0 + fee_rate))).max(0.0);
        if delta > affordable {
            delta = affordable;
            rest = 0.0;
        }
    }
    if c.lot > 0.0 {
        delta = delta.signum() * (delta.abs() / c.lot + 1e-9).floor() * c.lot;
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
