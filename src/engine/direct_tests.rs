//! A signal's order tried as it is sent (`Loop::direct`, one symbol filled at the deciding
//! close) against the same order put on the book and tried by the close phase: random
//! one-symbol experiments on real bars must give the same run, fill for fill and bit for bit.

use super::{prepare, Loop, Record, RunResult};
use crate::data::{load, LoadOptions};
use crate::experiment::{Experiment, LoadedExperiment};
use crate::signals::IndicatorCache;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn pick<'a>(r: &mut ChaCha8Rng, xs: &[&'a str]) -> &'a str {
    xs[r.gen_range(0..xs.len())]
}

/// A random one-symbol experiment filled at the signal bar's close.
fn experiment(r: &mut ChaCha8Rng) -> String {
    let mut t = String::new();
    for i in 0..r.gen_range(1..3) {
        let kind = pick(r, &["sma_cross", "ema_cross", "momentum", "donchian"]);
        let fast = r.gen_range(2..15);
        let params = match kind {
            "sma_cross" | "ema_cross" => format!("fast = {fast}\nslow = {}", fast + r.gen_range(1..40)),
            "momentum" => format!("period = {fast}\nthreshold = {:.4}", r.gen_range(0.0..0.02)),
            _ => format!("period = {fast}"),
        };
        let mode = pick(r, &["event", "state"]);
        let conf = pick(r, &["1.0", "0.5"]);
        t += &format!("[[signals.technical]]\nkind = \"{kind}\"\n{params}\nmode = \"{mode}\"\nconfidence = {conf}\nsource = \"s{i}\"\n");
    }
    t += &format!("[portfolio]\ninitial_cash = 10000\nallow_short = {}\n", r.gen_bool(0.5));
    t += &format!(
        "[decision]\nsizing = \"{}\"\nfraction = {:.2}\nnotional = 3000\nquantity = {}\n",
        pick(r, &["fixed_fraction", "fixed_notional", "fixed_quantity", "volatility"]),
        r.gen_range(0.1..1.0),
        pick(r, &["0.05", "1"]),
    );
    t += "[risk]\n";
    if r.gen_bool(0.3) {
        t += &format!("stop_loss = {:.3}\n", r.gen_range(0.005..0.05));
    }
    if r.gen_bool(0.2) {
        t += &format!("max_drawdown = {:.2}\nhalt_bars = {}\n", r.gen_range(0.05..0.3), r.gen_range(0..50));
    }
    if r.gen_bool(0.2) {
        t += &format!("max_trades_per_day = {}\n", r.gen_range(1..4));
    }
    if r.gen_bool(0.3) {
        t += &format!("max_position = {:.2}\n", r.gen_range(0.2..1.0));
    }
    let order = pick(r, &["market", "market", "market", "limit"]);
    t += &format!(
        "[execution]\nfill = \"close\"\nfee_bps = {:.1}\nslippage_bps = {:.1}\nimpact_bps = {}\norder_type = \"{order}\"\n",
        r.gen_range(0.0..20.0),
        r.gen_range(0.0..10.0),
        pick(r, &["0", "5"]),
    );
    t += pick(r, &["", "", "max_participation = 0.00001\n", "max_participation = 0.0002\n"]);
    t += pick(r, &["", "time_in_force_bars = 2\n", "time_in_force_day = true\n"]);
    if r.gen_bool(0.3) {
        t += "min_notional = 10\nlot_size = 0.001\n";
    }
    t
}

/// Everything a run records, as text (floats in `Debug` form: every bit).
fn fingerprint(res: &RunResult) -> String {
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    format!(
        "{:?} {:?} {:?} {:?} {:?} {:?} {:?} {} {}",
        bits(&res.equity),
        bits(&res.cash),
        res.fills,
        res.orders,
        res.trades,
        res.risk_events,
        res.stream.blocks(),
        res.fees.to_bits(),
        res.exposure_bars
    )
}

#[test]
fn an_order_tried_as_it_is_sent_fills_as_the_book_fills_it() {
    let fixture = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/BTCUSDT_1h.csv");
    let md = Arc::new(load(&[fixture], &LoadOptions::default()).unwrap().0);
    let cache = Arc::new(IndicatorCache::default());
    let mut r = ChaCha8Rng::seed_from_u64(7);
    let (mut compared, mut fills, mut direct_fills, mut partial) = (0, 0, 0, 0);
    while compared < 80 {
        let body = experiment(&mut r);
        let text = format!("[experiment]\nname = \"t\"\n[data]\npath = \"unused\"\n{body}");
        let Ok(exp) = Experiment::from_toml(&text, Path::new("t.toml")) else { continue };
        let le = LoadedExperiment { exp, file: "t.toml".into() };
        let Ok(prep) = prepare(&le, md.clone(), &cache) else { continue };
        let run = |direct: bool| {
            let mut lp = Loop::new(&le.exp, &prep, Record::Full);
            assert!(lp.direct, "one symbol filled at the close:\n{body}");
            lp.direct = direct;
            lp.advance(lp.n);
            lp.finish()
        };
        let (book, now) = (run(false), run(true));
        assert_eq!(fingerprint(&book), fingerprint(&now), "experiment:\n{body}");
        compared += 1;
        fills += now.fills.len();
        direct_fills += usize::from(body.contains("\"market\"")) * now.fills.len();
        partial += now.orders.iter().filter(|o| o.status == crate::execution::Status::Partial).count();
    }
    // The runs trade, most of them through market orders tried as sent, and some of those
    // orders leave a rest on the book.
    assert!(
        fills > 80 * 20 && direct_fills > fills / 2 && partial > 0,
        "{fills} fills, {direct_fills} by market orders, {partial} partial"
    );
}
