//! Library errors. Every input error names where it came from: the file, the line (or row, for
//! binary formats) or key, and the rule that was broken.

use std::fmt;
use std::path::PathBuf;

/// Where in a file a problem sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loc {
    /// 1-based line number in a text file (the header is line 1).
    Line(usize),
    /// 1-based data row in a binary file (Parquet, Feather) or a JSON array.
    Row(usize),
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Loc::Line(n) => write!(f, "line {n}"),
            Loc::Row(n) => write!(f, "row {n}"),
        }
    }
}

/// All errors raised by the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad market or signal data.
    #[error("{}{}: {rule}: {detail}", file.display(), loc.map(|l| format!(" {l}")).unwrap_or_default())]
    Data {
        /// The file that holds the problem.
        file: PathBuf,
        /// Line or row, when the problem is in one.
        loc: Option<Loc>,
        /// Short name of the rule that was broken (e.g. `high-below-open-close`).
        rule: &'static str,
        /// What was found and what was expected.
        detail: String,
    },
    /// Bad experiment file: unknown key, wrong type, out-of-range value.
    #[error("{}: {key}: {msg}", file.display())]
    Config {
        /// The experiment file.
        file: PathBuf,
        /// Key path such as `risk.stop_loss` or `signals.technical[0].fast`.
        key: String,
        /// What was wrong and what was expected.
        msg: String,
    },
    /// A file or folder could not be read or written.
    #[error("{}: {err}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The underlying error (in the message, not chained as a source, so it prints once).
        err: std::io::Error,
    },
    /// Bad command-line input that is not tied to a file.
    #[error("{0}")]
    Input(String),
    /// A failure that is not the user's input (a bug, or an output that could not be made).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A data error at a location.
    pub fn data(file: impl Into<PathBuf>, loc: Option<Loc>, rule: &'static str, detail: impl Into<String>) -> Self {
        Error::Data { file: file.into(), loc, rule, detail: detail.into() }
    }

    /// An I/O error on a path.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), err: source }
    }

    /// Whether the error is the user's input (exit code 2) rather than an internal failure (1).
    pub fn is_input_error(&self) -> bool {
        !matches!(self, Error::Internal(_))
    }
}

/// Result with the library's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
