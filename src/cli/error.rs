//! The command-line error: every failure a command can meet, printed as one line.

use crate::config::ConfigError;
use crate::domain::deploy_token::TokenError;
use crate::domain::path::PathError;
use crate::keys::KeyError;
use crate::manage::ManageError;
use crate::metrics::MetricsError;
use crate::store::{OpenError, UrlError};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error(transparent)]
    Url(#[from] UrlError),
    #[error(transparent)]
    Copy(#[from] crate::store::copy::CopyError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("invalid path: {0}")]
    Path(#[from] PathError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Manage(#[from] ManageError),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e.0)
    }
}
