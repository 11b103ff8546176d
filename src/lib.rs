//! tradelab: a deterministic, event-driven backtester and parameter optimizer for trading
//! strategies. See `README.md` for use and `../shared/DESIGN.md` for the map.
//!
//! Modules are named after the domain; the [`engine`] is the only place they meet.

pub mod cli;
pub mod data;
pub mod error;
pub mod experiment;
pub mod signals;

pub use error::{Error, Result};
pub mod decision;
pub mod engine;
pub mod execution;
pub mod metrics;
pub mod numerics;
pub mod optimize;
pub mod portfolio;
pub mod rebalance;
pub mod regime;
pub mod report;
pub mod risk;
pub mod runner;
pub mod synth;
