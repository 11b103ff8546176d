//! Genetic search with genevo.

use super::{Sink, Study};
use crate::error::{Error, Result};

pub(crate) fn run(_study: &mut Study, _sink: &mut Sink) -> Result<()> {
    Err(Error::Input("method = \"genetic\" is not available yet".into()))
}
