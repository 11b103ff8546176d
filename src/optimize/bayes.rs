//! Bayesian optimization: Gaussian process + expected improvement.

use super::{Sink, Study};
use crate::error::{Error, Result};

pub(crate) fn run(_study: &mut Study, _sink: &mut Sink) -> Result<()> {
    Err(Error::Input("method = \"bayesian\" is not available yet".into()))
}
