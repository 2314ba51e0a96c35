//! Reading a whole request body, refusing it as soon as it grows past a limit: the one
//! body reader of the token endpoint's OAuth form, the LFS batch API and the management
//! API. Streams (git packs, LFS objects) are never read whole.

use actix_web::web::{BytesMut, Payload};
use futures_util::StreamExt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("body exceeds {0} bytes")]
    TooLarge(usize),
    #[error("could not read the request body")]
    Unreadable,
}

/// The body, at most `limit` bytes; the excess is never buffered.
pub async fn read_bounded(mut payload: Payload, limit: usize) -> Result<BytesMut, BodyError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
