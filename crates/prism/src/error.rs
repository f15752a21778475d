//! The library's one error type. Messages say what failed and name the file, key or value involved;
//! the underlying cause sits in `#[source]` so a CLI can print the whole chain with `{err:#}`.

use std::path::PathBuf;

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed.
    #[error("failed to {action} '{path}'")]
    Io {
        /// What we were doing ("read", "write", "create directory", ...).
        action: &'static str,
        /// The file involved.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// An image file could not be decoded.
    #[error("failed to read image '{path}'")]
    Image {
        /// The image file.
        path: PathBuf,
        /// The decoder's reason.
        #[source]
        source: image::ImageError,
    },
    /// A data file is malformed (IDX header, truncated file, ...).
    #[error("bad data file '{path}': {reason}")]
    Data {
        /// The data file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A configuration file or value is invalid.
    #[error("invalid configuration{}: {reason}", origin.as_ref().map(|p| format!(" in '{}'", p.display())).unwrap_or_default())]
    Config {
        /// The config file, when the problem came from one.
        origin: Option<PathBuf>,
        /// What is wrong, naming the key.
        reason: String,
    },
    /// A checkpoint is missing a tensor, has the wrong shape, or lacks metadata.
    #[error("bad checkpoint '{path}': {reason}")]
    Checkpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A tensor's shape does not fit the operation.
    #[error("shape error: {0}")]
    Shape(String),
    /// A value passed by the caller is outside its valid range.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Training was interrupted (Ctrl-C) after saving its state.
    #[error("interrupted at step {step}; state saved to '{path}'")]
    Interrupted {
        /// The last completed step.
        step: u64,
        /// Where the training state was written.
        path: PathBuf,
    },
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An I/O error on `path` while doing `action`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// A configuration error without a file.
    pub fn config(reason: impl Into<String>) -> Self {
        Error::Config {
            origin: None,
            reason: reason.into(),
        }
    }

    /// An invalid argument.
    pub fn invalid(reason: impl Into<String>) -> Self {
        Error::InvalidArgument(reason.into())
    }
}
