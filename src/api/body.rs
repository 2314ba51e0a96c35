//! The body of `POST …/deploy_tokens`: JSON or form-encoded, as GitLab accepts both, with
//! `scopes` as an array or a comma-separated string. At most [`MAX_BODY_BYTES`].
//!
//! Only the representation is handled here; whether the values are acceptable is the
//! manager's decision (it answers with one message per field).

use actix_web::http::header::{HeaderMap, CONTENT_TYPE};
use actix_web::web;
use serde_json::Value;

use crate::request::body::{read_bounded, BodyError as ReadError};
use crate::request::limits::MAX_BODY_BYTES;

/// The fields of a create request, untrusted and unvalidated.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CreateBody {
    pub name: Option<String>,
    /// Each entry may itself be `a,b`; the manager splits and validates.
    pub scopes: Vec<String>,
    pub expires_at: Option<String>,
    pub username: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BodyError {
    #[error("body exceeds {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("could not read the request body")]
    Unreadable,
    #[error("body is not valid JSON: {0}")]
    BadJson(String),
    #[error("body is not a JSON object")]
    NotAnObject,
    #[error("body is not application/x-www-form-urlencoded")]
    BadForm,
    #[error("{0} must be a string")]
    NotAString(&'static str),
    #[error("scopes must be an array of strings or a comma-separated string")]
    BadScopes,
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`] as soon as it is exceeded.
pub async fn read(payload: web::Payload) -> Result<web::BytesMut, BodyError> {
    read_bounded(payload, MAX_BODY_BYTES)
        .await
        .map_err(|e| match e {
            ReadError::TooLarge(_) => BodyError::TooLarge,
            ReadError::Unreadable => BodyError::Unreadable,
        })
}

/// Parses by content type: form-encoded when it says so, JSON otherwise (GitLab's own
/// clients send JSON; an empty body is an empty request, so every field is reported
/// missing rather than the body being "malformed").
pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<CreateBody, BodyError> {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.starts_with("application/x-www-form-urlencoded") {
        parse_form(body)
    } else if body.iter().all(u8::is_ascii_whitespace) {
        Ok(CreateBody::default())
    } else {
        parse_json(body)
    }
}

fn parse_json(body: &[u8]) -> Result<CreateBody, BodyError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| BodyError::BadJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(BodyError::NotAnObject);
    };
    let text = |field: &'static str| -> Result<Option<String>, BodyError> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(BodyError::NotAString(field)),
        }
    };
    let scopes = match map.get("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or(BodyError::BadScopes)
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(BodyError::BadScopes),
    };
    Ok(CreateBody {
        name: text("name")?,
        scopes,
        expires_at: text("expires_at")?,
        username: text("username")?,
    })
}

/// `name=…&scopes=a,b`, `scopes[]=a&scopes[]=b` (Rails) or repeated `scopes=`.
fn parse_form(body: &[u8]) -> Result<CreateBody, BodyError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(body).map_err(|_| BodyError::BadForm)?;
    let mut out = CreateBody::default();
    for (key, value) in pairs {
        match key.as_str() {
            "name" => out.name = Some(value),
            "expires_at" => out.expires_at = Some(value),
            "username" => out.username = Some(value),
            "scopes" | "scopes[]" => out.scopes.push(value),
            _ => {}
        }
    }
    Ok(out)
}

/// GitLab's `expires_at` is a datetime; clients such as Terraform send
/// `2030-03-14T00:00:00.000Z`. Deploy tokens here expire at midnight UTC of a date, so a
/// timestamp at exactly midnight UTC is that date; anything else is passed on unchanged for
/// the manager to refuse, never rounded (rounding up would extend a token's life).
pub fn normalise_expiry(raw: &str) -> String {
    let trimmed = raw.trim();
    match chrono::DateTime::parse_from_rfc3339(trimmed) {
        Ok(at) => {
            let utc = at.with_timezone(&chrono::Utc);
            if utc.time() == chrono::NaiveTime::MIN {
                utc.date_naive().to_string()
            } else {
                trimmed.to_string()
            }
        }
        Err(_) => trimmed.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::HeaderValue;

    fn headers(content_type: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_str(content_type).expect("test input is valid"),
        );
        h
    }

    #[test]
    fn json_with_array_or_comma_scopes() {
        let h = headers("application/json");
        let a = parse(
            &h,
            br#"{"name":"ci","scopes":["read_registry","write_registry"]}"#,
        )
        .expect("test input is valid");
        assert_eq!(a.name.as_deref(), Some("ci"));
        assert_eq!(a.scopes, ["read_registry", "write_registry"]);
        let b = parse(
            &h,
            br#"{"name":"ci","scopes":"read_registry,write_registry","expires_at":null}"#,
        )
        .expect("test input is valid");
        assert_eq!(b.scopes, ["read_registry,write_registry"]);
        assert_eq!(b.expires_at, None);
    }

    #[test]
    fn form_bodies() {
        let h = headers("application/x-www-form-urlencoded; charset=utf-8");
        let a = parse(
            &h,
            b"name=ci&scopes%5B%5D=read_registry&scopes%5B%5D=read_repository&username=bot",
        )
        .expect("test input is valid");
        assert_eq!(a.scopes, ["read_registry", "read_repository"]);
        assert_eq!(a.username.as_deref(), Some("bot"));
        let b = parse(&h, b"name=ci&scopes=read_registry%2Cwrite_registry")
            .expect("test input is valid");
        assert_eq!(b.scopes, ["read_registry,write_registry"]);
    }

    #[test]
    fn malformed_bodies_are_errors_not_panics() {
        let h = headers("application/json");
        assert!(matches!(parse(&h, b"{"), Err(BodyError::BadJson(_))));
        assert_eq!(parse(&h, b"[1]"), Err(BodyError::NotAnObject));
        assert_eq!(
            parse(&h, br#"{"name":1}"#),
            Err(BodyError::NotAString("name"))
        );
        assert_eq!(parse(&h, br#"{"scopes":[1]}"#), Err(BodyError::BadScopes));
        assert_eq!(parse(&h, br#"{"scopes":{}}"#), Err(BodyError::BadScopes));
        assert_eq!(parse(&h, b"  "), Ok(CreateBody::default()));
        assert_eq!(parse(&HeaderMap::new(), b""), Ok(CreateBody::default()));
    }

    #[test]
    fn midnight_timestamps_become_dates() {
        assert_eq!(normalise_expiry("2030-03-14T00:00:00.000Z"), "2030-03-14");
        assert_eq!(normalise_expiry("2030-03-14T01:00:00+01:00"), "2030-03-14");
        assert_eq!(
            normalise_expiry("2030-03-14T12:00:00Z"),
            "2030-03-14T12:00:00Z"
        );
        assert_eq!(normalise_expiry("2030-03-14"), "2030-03-14");
        assert_eq!(normalise_expiry("soon"), "soon");
    }
}
