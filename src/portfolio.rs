//! The ledger: cash, positions, average entry prices, realized PnL, fees, equity marked to the
//! latest prices, and round-trip trades built from fills.
//!
//! Invariant (checked by tests): `equity == cash + sum(qty * mark)` at every bar. Fees are paid
//! out of cash in the quote currency on every fill.

/// Why a fill happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The decision layer's target changed.
    Signal,
    /// Stop-loss.
    StopLoss,
    /// Take-profit.
    TakeProfit,
    /// Trailing stop.
    TrailingStop,
    /// Drawdown halt or daily-loss limit flattened the book.
    Halt,
    /// The rebalancer.
    Rebalance,
    /// Equity at or below zero at a close: the account's positions closed there, the run ended.
    Liquidation,
}

impl Reason {
    /// Name as written in CSV files.
    pub fn as_str(&self) -> &'static str {
        match self {
            Reason::Signal => "signal",
            Reason::StopLoss => "stop_loss",
            Reason::TakeProfit => "take_profit",
            Reason::TrailingStop => "trailing_stop",
            Reason::Halt => "halt",
            Reason::Rebalance => "rebalance",
            Reason::Liquidation => "liquidation",
        }
    }
}

/// One executed fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Fill {
    /// Bar index.
    pub bar: usize,
    /// Symbol id.
    pub sym: usize,
    /// Signed quantity (+ buy, - sell).
    pub qty: f64,
    /// Price paid or received, slippage included.
    pub price: f64,
    /// Fee charged.
    pub fee: f64,
    /// Why.
    pub reason: Reason,
    /// Order id that produced it.
    pub order: u64,
}

/// A round trip: from a flat position to flat again (a reversal closes one and opens another).
#[derive(Debug, Clone, PartialEq)]
pub struct Trade {
    /// Symbol id.
    pub sym: usize,
    /// +1 long, -1 short.
    pub dir: i8,
    /// Bar of the first fill.
    pub entry_bar: usize,
    /// Bar of the closing fill (None while open).
    pub exit_bar: Option<usize>,
    /// Volume-weighted entry price.
    pub entry_price: f64,
    /// Volume-weighted exit price (mark price while open).
    pub exit_price: f64,
    /// Largest absolute quantity held.
    pub max_qty: f64,
    /// Cost of the entries (sum of |qty| * price), the base of the trade's return.
    pub entry_notional: f64,
    /// PnL net of every fee paid in the trade.
    pub pnl: f64,
    /// Fees paid in the trade.
    pub fees: f64,
    /// What closed it.
    pub exit_reason: Option<Reason>,
}

impl Trade {
    /// Net PnL over entry notional.
    pub fn ret(&self) -> f64 {
        if self.entry_notional > 0.0 {
            self.pnl / self.entry_notional
        } else {
            0.0
        }
    }
}

/// Cash, positions and the trade log.
#[derive(Debug, Clone)]
pub struct Portfolio {
    /// Cash in the quote currency.
    pub cash: f64,
    /// Signed quantity per symbol.
    pub qty: Vec<f64>,
    /// Average entry price of the open position per symbol.
    pub avg_price: Vec<f64>,
    /// Latest price per symbol (the mark).
    pub mark: Vec<f64>,
    /// Fees paid in total.
    pub fees: f64,
    /// Sum of |fill notional|.
    pub traded_notional: f64,
    /// Borrow cost paid on shorts.
    pub borrow_paid: f64,
    /// Trades, closed and open, in the order they opened (without those folded into `folded`).
    pub trades: Vec<Trade>,
    /// With [`Portfolio::folding`]: the closed trades dropped from the front of `trades`,
    /// folded into running statistics in the order they opened (a candidate keeps no list).
    pub folded: Option<crate::metrics::TradeStats>,
    /// Trades dropped from the front of `trades` so far.
    dropped: usize,
    /// Index (counting dropped trades) of each symbol's open trade.
    open_trade: Vec<Option<usize>>,
    exit_notional: Vec<f64>,
    exit_qty: Vec<f64>,
}

/// Quantities below this are treated as zero (float dust from partial closes).
pub const QTY_EPS: f64 = 1e-12;

impl Portfolio {
    /// An empty book with `cash`.
    pub fn new(cash: f64, n_sym: usize) -> Self {
        Portfolio {
            cash,
            qty: vec![0.0; n_sym],
            avg_price: vec![0.0; n_sym],
            mark: vec![0.0; n_sym],
            fees: 0.0,
            traded_notional: 0.0,
            borrow_paid: 0.0,
            trades: Vec::new(),
            folded: None,
            dropped: 0,
            open_trade: vec![None; n_sym],
            exit_notional: vec![0.0; n_sym],
            exit_qty: vec![0.0; n_sym],
        }
    }

    /// Keep no list of closed trades: fold each into running statistics once every trade opened
    /// before it has closed too (so they are folded in the order they opened, as a whole list is).
    pub fn folding(mut self) -> Self {
        self.folded = Some(Default::default());
        self
    }

    fn fold_closed(&mut self) {
        let Some(st) = &mut self.folded else { return };
        let k = self.trades.iter().take_while(|t| t.exit_bar.is_some()).count();
        for t in &self.trades[..k] {
            st.push(t);
        }
        if k == self.trades.len() {
            self.trades.clear();
        } else {
            self.trades.drain(..k);
        }
        self.dropped += k;
    }

    /// Cash plus positions at their marks.
    pub fn equity(&self) -> f64 {
        self.cash + self.qty.iter().zip(&self.mark).map(|(q, p)| q * p).sum::<f64>()
    }

    /// Sum of |position value|.
    pub fn gross_exposure(&self) -> f64 {
        self.qty.iter().zip(&self.mark).map(|(q, p)| (q * p).abs()).sum()
    }

    /// Book a fill: cash, position, average price, realized PnL into the symbol's trade.
    pub fn apply(&mut self, f: &Fill) {
        let s = f.sym;
        let (q0, dq) = (self.qty[s], f.qty);
        self.cash -= dq * f.price + f.fee;
        self.fees += f.fee;
        self.traded_notional += (dq * f.price).abs();
        let q1 = q0 + dq;
        let q1 = if q1.abs() < QTY_EPS * (1.0 + q0.abs()) { 0.0 } else { q1 };
        self.qty[s] = q1;
        // Part of the fill that closes the existing position, and part that opens a new one.
        let closing = if q0 != 0.0 && q0.signum() != dq.signum() { dq.abs().min(q0.abs()) } else { 0.0 };
        let opening = dq.abs() - closing;
        let fee_close = if dq != 0.0 { f.fee * closing / dq.abs() } else { 0.0 };
        if closing > 0.0 {
            let pnl = closing * (f.price - self.avg_price[s]) * q0.signum();
            if let Some(ti) = self.open_trade[s] {
                let t = &mut self.trades[ti - self.dropped];
                t.pnl += pnl - fee_close;
                t.fees += fee_close;
                self.exit_notional[s] += closing * f.price;
                self.exit_qty[s] += closing;
                t.exit_price = self.exit_notional[s] / self.exit_qty[s];
                if q1 == 0.0 || q1.signum() != q0.signum() {
                    t.exit_bar = Some(f.bar);
                    t.exit_reason = Some(f.reason);
                    self.open_trade[s] = None;
                    if ti == self.dropped {
                        self.fold_closed();
                    }
                }
            }
            if q1 == 0.0 {
                self.avg_price[s] = 0.0;
            }
        }
        if opening > QTY_EPS {
            let fee_open = f.fee - fee_close;
            let new_side = q1.signum();
            if q0 == 0.0 || q0.signum() != new_side {
                self.avg_price[s] = f.price;
                self.exit_notional[s] = 0.0;
                self.exit_qty[s] = 0.0;
                self.trades.push(Trade {
                    sym: s,
                    dir: new_side as i8,
                    entry_bar: f.bar,
                    exit_bar: None,
                    entry_price: f.price,
                    exit_price: f.price,
                    max_qty: q1.abs(),
                    entry_notional: opening * f.price,
                    pnl: -fee_open,
                    fees: fee_open,
                    exit_reason: None,
                });
                self.open_trade[s] = Some(self.dropped + self.trades.len() - 1);
            } else {
                self.avg_price[s] = (self.avg_price[s] * q0.abs() + f.price * opening) / q1.abs();
                if let Some(ti) = self.open_trade[s] {
                    let t = &mut self.trades[ti - self.dropped];
                    t.entry_notional += opening * f.price;
                    t.entry_price = self.avg_price[s];
                    t.max_qty = t.max_qty.max(q1.abs());
                    t.pnl -= fee_open;
                    t.fees += fee_open;
                }
            }
        }
    }

    /// Charge `rate_per_bar` of the value of every short position at the marks, from cash; the
    /// cost is booked to the open trade's PnL.
    pub fn charge_borrow(&mut self, rate_per_bar: f64) {
        for s in 0..self.qty.len() {
            if self.qty[s] < 0.0 {
                let cost = -self.qty[s] * self.mark[s] * rate_per_bar;
                self.cash -= cost;
                self.borrow_paid += cost;
                if let Some(ti) = self.open_trade[s] {
                    self.trades[ti - self.dropped].pnl -= cost;
                }
            }
        }
    }

    /// Bring open trades' exit price and PnL up to the marks (for reporting at the end).
    pub fn mark_open_trades(&mut self) {
        for s in 0..self.qty.len() {
            if let Some(ti) = self.open_trade[s] {
                let t = &mut self.trades[ti - self.dropped];
                let q = self.qty[s];
                let unreal = q * (self.mark[s] - self.avg_price[s]);
                t.exit_price = self.mark[s];
                t.pnl += unreal;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(bar: usize, qty: f64, price: f64, fee: f64) -> Fill {
        Fill { bar, sym: 0, qty, price, fee, reason: Reason::Signal, order: 0 }
    }

    #[test]
    fn long_round_trip_by_hand() {
        let mut p = Portfolio::new(1000.0, 1);
        p.apply(&fill(0, 2.0, 100.0, 0.2)); // cash 1000 - 200 - 0.2
        p.mark[0] = 110.0;
        assert!((p.cash - 799.8).abs() < 1e-9);
        assert!((p.equity() - 1019.8).abs() < 1e-9);
        p.apply(&fill(1, -1.0, 110.0, 0.11)); // half out
        p.apply(&fill(2, -1.0, 120.0, 0.12));
        assert_eq!(p.qty[0], 0.0);
        let t = &p.trades[0];
        // pnl = 1*10 + 1*20 - fees 0.43
        assert!((t.pnl - (30.0 - 0.43)).abs() < 1e-9);
        assert!((t.exit_price - 115.0).abs() < 1e-9);
        assert!((p.cash - (1000.0 + 30.0 - 0.43)).abs() < 1e-9);
    }

    #[test]
    fn reversal_closes_and_opens_at_one_price() {
        let mut p = Portfolio::new(1000.0, 1);
        p.apply(&fill(0, 1.0, 100.0, 0.0));
        p.apply(&fill(1, -3.0, 90.0, 0.3)); // close 1 (loss 10), open short 2
        assert_eq!(p.qty[0], -2.0);
        assert_eq!(p.trades.len(), 2);
        assert!((p.trades[0].pnl - (-10.0 - 0.1)).abs() < 1e-9);
        assert_eq!(p.trades[1].dir, -1);
        assert_eq!(p.avg_price[0], 90.0);
        p.mark[0] = 80.0;
        // cash 1000 - 100 + 270 - 0.3 = 1169.7; equity = 1169.7 - 160 = 1009.7 (= 1000 - 10 + 20 - 0.3)
        assert!((p.equity() - 1009.7).abs() < 1e-9);
    }
}
