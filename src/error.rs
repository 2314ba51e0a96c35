//! The command-line error: every failure a command can meet, printed as one line.

use crate::db::DbError;
use crate::domain::deploy_token::TokenError;
use crate::domain::path::PathError;
use crate::keys::KeyError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("invalid path: {0}")]
    Path(#[from] PathError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Manage(#[from] crate::manage::ManageError),
}
