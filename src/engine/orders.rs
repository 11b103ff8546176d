//! The engine's order book: submitting orders (a newer one replaces a symbol's waiting one),
//! filling what is due in each phase of a bar through the execution simulator (reductions first,
//! so their cash is there for additions), booking fills, and flattening the book. With one
//! symbol filled at the deciding bar's close, a signal's order is tried as it is sent, where the
//! book would have tried it next.

use super::Loop;
use crate::execution::{self, Order, OrderRecord, Outcome, PriceType, Size, Status};
use crate::experiment::FillTiming;
use crate::portfolio::{Fill, Reason};

/// What trying an order came to.
enum Tried {
    /// Not due, not tradable or not touched: it stays as it is.
    Waits,
    /// Filled, rejected, expired or already at its target: it leaves the book.
    Left,
    /// Partly filled: the rest (a quantity) waits for the next bar.
    Rest(f64),
}

impl Loop<'_> {
    pub(super) fn submit(&mut self, created: usize, order: Order) {
        self.enter(created, &order);
        self.pending.push(order);
    }

    /// Log order `order` (made at bar `created`) and cancel its symbol's waiting one: a newer
    /// order for a symbol replaces it.
    pub(super) fn enter(&mut self, created: usize, order: &Order) {
        let sym = order.sym;
        let orders = &mut self.res.orders;
        self.pending.retain(|o| {
            let keep = o.sym != sym;
            if !keep {
                if let Some(r) = orders.get_mut(o.id as usize) {
                    r.status = Status::Cancelled;
                }
            }
            keep
        });
        self.order_count += 1;
        if self.log {
            orders.push(OrderRecord { order: order.clone(), created, filled_qty: 0.0, status: Status::Pending, note: String::new() });
        }
    }

    /// Send a signal's order decided at bar t's close. With one symbol and fills at that close
    /// (`direct`), the book would hold this order alone and try it next: it is tried now, and
    /// goes on the book only if it waits or leaves a rest.
    pub(super) fn submit_signal(&mut self, t: usize, order: Order) {
        if !(self.direct && order.bar == t && order.at_close && order.price == PriceType::Market) {
            return self.submit(t, order);
        }
        self.enter(t, &order);
        match self.execute(&order, t, true) {
            Tried::Left => {}
            Tried::Waits => self.pending.push(order),
            Tried::Rest(rest) => self.pending.push(Order { size: Size::Qty(rest), bar: t + 1, ..order }),
        }
    }

    /// Log an order that closes symbol `s`'s position `q` where it is made (a stop, a
    /// liquidation): it never waits on the book. Its id.
    pub(super) fn enter_closing(&mut self, t: usize, s: usize, q: f64, at_close: bool, reason: Reason) -> u64 {
        let id = self.next_id();
        let order = Order { id, sym: s, size: Size::Qty(-q), price: PriceType::Market, bar: t, at_close, expires: None, reason };
        self.enter(t, &order);
        id
    }

    /// Book the fill of order `id` filled whole at once (see [`Self::enter_closing`]).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn book_whole(&mut self, t: usize, s: usize, qty: f64, price: f64, fee: f64, reason: Reason, id: u64, at_close: bool) {
        self.book(t, s, qty, price, fee, reason, id, at_close);
        let rec = self.res.orders.get_mut(id as usize).unwrap_or(&mut self.scratch);
        rec.filled_qty = qty;
        rec.status = Status::Filled;
    }

    pub(super) fn next_id(&self) -> u64 {
        self.order_count
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn book(&mut self, t: usize, sym: usize, qty: f64, price: f64, fee: f64, reason: Reason, order: u64, at_close: bool) {
        if !(qty.is_finite() && price.is_finite() && fee.is_finite()) && self.res.fault.is_none() {
            self.res.fault = Some((t, format!("a fill of {qty:e} at {price:e} (fee {fee:e}) is not a finite number")));
        }
        let before = self.pf.qty[sym];
        let f = Fill { bar: t, sym, qty, price, fee, reason, order };
        self.pf.apply(&f);
        let after = self.pf.qty[sym];
        if after != 0.0 && (before == 0.0 || before.signum() != after.signum()) {
            self.best[sym] = price;
            // The ATR known at the fill: this bar's at a close fill, the previous bar's at an open.
            let known = if at_close { Some(t) } else { t.checked_sub(1) };
            self.entry_atr[sym] = match (self.atr.get(sym), known) {
                (Some(a), Some(k)) => a[k],
                _ => f64::NAN,
            };
            self.entry_bar[sym] = t;
            if at_close {
                self.entry_close_bar[sym] = t;
            } else {
                self.entry_open_bar[sym] = t;
            }
        }
        if self.log {
            self.res.fills.push(f);
        }
    }

    /// Try the pending orders due in this phase; orders that reduce a position go first so their
    /// cash is there for the ones that add, then every order left, whatever it does now (the fees
    /// of the first pass can turn an order that added into one that reduces: it is still due).
    pub(super) fn process(&mut self, t: usize, at_close: bool) {
        match self.pending.len() {
            0 => {}
            // One order: no order among orders to keep.
            1 => {
                self.try_order(0, t, at_close);
            }
            _ => {
                for reducing_pass in [true, false] {
                    let mut i = 0;
                    while i < self.pending.len() {
                        let o = &self.pending[i];
                        let cur = self.pf.qty[o.sym];
                        let skip = reducing_pass && !(cur != 0.0 && self.wants(o, cur).signum() != cur.signum());
                        if skip || !self.try_order(i, t, at_close) {
                            i += 1;
                        }
                    }
                }
            }
        }
    }

    /// Take pending order `i` off the book (the last one, usually the only one, without a
    /// shift).
    fn drop_pending(&mut self, i: usize) {
        if i + 1 == self.pending.len() {
            self.pending.pop();
        } else {
            self.pending.remove(i);
        }
    }

    /// The signed quantity order `o` asks for, from position `cur` at the marks.
    fn wants(&self, o: &Order, cur: f64) -> f64 {
        match o.size {
            Size::TargetFraction(f) => f * self.pf.equity() / self.pf.mark[o.sym] - cur,
            Size::TargetQty(q) => q - cur,
            Size::Qty(q) => q,
        }
    }

    /// Try pending order `i` if it is due in this phase; whether it left the book (filled,
    /// rejected, expired or already at its target).
    fn try_order(&mut self, i: usize, t: usize, at_close: bool) -> bool {
        let o = self.pending[i].clone();
        match self.execute(&o, t, at_close) {
            Tried::Waits => false,
            Tried::Left => {
                self.drop_pending(i);
                true
            }
            Tried::Rest(rest) => {
                let p = &mut self.pending[i];
                p.size = Size::Qty(rest);
                p.bar = t + 1;
                false
            }
        }
    }

    /// Try order `o` at bar t's open or close (`at_close`), if it is due there: fill, reject or
    /// expire it (its record says which) or leave it waiting.
    fn execute(&mut self, o: &Order, t: usize, at_close: bool) -> Tried {
        let intrabar = !matches!(o.price, PriceType::Market);
        let due = o.bar <= t && (o.at_close == at_close || intrabar && !at_close);
        if !due {
            return Tried::Waits;
        }
        if o.expires.is_some_and(|e| t > e) {
            let rec = self.res.orders.get_mut(o.id as usize).unwrap_or(&mut self.scratch);
            rec.status = if rec.filled_qty != 0.0 { Status::Partial } else { Status::Expired };
            return Tried::Left;
        }
        let b = &self.md.bars[o.sym];
        if !b.tradable[t] {
            return Tried::Waits;
        }
        let cur = self.pf.qty[o.sym];
        let (raw, maker) = match o.price {
            PriceType::Market => (if at_close { b.close[t] } else { b.open[t] }, false),
            PriceType::Limit(l) => {
                let buy = self.wants(o, cur) > 0.0;
                if buy && b.open[t] <= l || !buy && b.open[t] >= l {
                    (b.open[t], true)
                } else if buy && b.low[t] <= l || !buy && b.high[t] >= l {
                    (l, true)
                } else {
                    return Tried::Waits;
                }
            }
            PriceType::Stop(l) => {
                let buy = self.wants(o, cur) > 0.0;
                if buy && b.open[t] >= l || !buy && b.open[t] <= l {
                    (b.open[t], false)
                } else if buy && b.high[t] >= l || !buy && b.low[t] <= l {
                    (l, false)
                } else {
                    return Tried::Waits;
                }
            }
        };
        let eq = self.pf.equity();
        match execution::fill(o.size, cur, raw, maker, eq, self.pf.cash, b.volume[t], &self.sym_costs[o.sym]) {
            Outcome::Done => {
                let rec = self.res.orders.get_mut(o.id as usize).unwrap_or(&mut self.scratch);
                rec.status = Status::Filled;
                if rec.filled_qty == 0.0 && self.log {
                    rec.note = "already at target".into();
                }
                Tried::Left
            }
            Outcome::Reject(why) => {
                let rec = self.res.orders.get_mut(o.id as usize).unwrap_or(&mut self.scratch);
                rec.status = if rec.filled_qty != 0.0 { Status::Partial } else { Status::Rejected };
                if self.log {
                    rec.note = why.into();
                }
                Tried::Left
            }
            Outcome::Fill { qty, price, fee, rest } => {
                self.book(t, o.sym, qty, price, fee, o.reason, o.id, at_close);
                if let (Reason::Rebalance, Some(r)) = (o.reason, self.rb_open) {
                    self.rb_px[o.sym] = price;
                    let rec = &mut self.res.rebalances[r];
                    rec.cost += fee + (qty * (price - raw)).abs();
                    rec.notional += (qty * price).abs();
                }
                let rec = self.res.orders.get_mut(o.id as usize).unwrap_or(&mut self.scratch);
                rec.filled_qty += qty;
                if rest != 0.0 {
                    rec.status = Status::Partial;
                    Tried::Rest(rest)
                } else {
                    rec.status = Status::Filled;
                    Tried::Left
                }
            }
        }
    }

    /// Send market orders that take every position to zero.
    pub(super) fn flatten(&mut self, t: usize, reason: Reason) {
        let (bar, at_close) = self.when(t);
        for s in 0..self.md.symbols.len() {
            self.targets[s] = 0.0;
            self.target_qty[s] = 0.0;
            if self.pf.qty[s] != 0.0 {
                let id = self.next_id();
                self.submit(
                    t,
                    Order { id, sym: s, size: Size::TargetFraction(0.0), price: PriceType::Market, bar, at_close, expires: None, reason },
                );
            }
        }
    }

    pub(super) fn when(&self, t: usize) -> (usize, bool) {
        let x = &self.exp.execution;
        match x.fill {
            FillTiming::NextOpen => (t + 1 + x.delay_bars, false),
            FillTiming::NextClose => (t + 1 + x.delay_bars, true),
            FillTiming::Close => (t, true),
        }
    }
}
