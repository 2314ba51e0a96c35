//! The `:id` of `/projects/:id/…` and `/groups/:id/…`: a numeric id or the URL-encoded full
//! path (`acme%2Fplatform%2Fapi`), as GitLab accepts it.
//!
//! actix matches routes on a path in which `%2F`, `%25` and `%2B` are still encoded (so an
//! encoded path stays one segment), and `match_info` hands the segment over in that form:
//! it is decoded exactly once, here. `web::Path` would decode it too, but a literal `/`
//! would never reach a `{id}` segment anyway, so decoding here keeps the rule in one place.

use percent_encoding::percent_decode_str;

/// What a raw `:id` segment names, before the store is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamespaceRef {
    /// All ASCII digits: GitLab treats such an `:id` as the numeric id, never as a path.
    Id(i64),
    /// Anything else, decoded: the full path (`acme/platform/api`).
    Path(String),
}

impl NamespaceRef {
    /// `None` for a segment that is not valid percent-encoded UTF-8 or is empty: the caller
    /// answers 404 as for any unknown namespace.
    pub fn parse(raw: &str) -> Option<Self> {
        let decoded = percent_decode_str(raw).decode_utf8().ok()?;
        if decoded.is_empty() {
            return None;
        }
        if decoded.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits for an i64 is no id that exists.
            return decoded.parse().ok().map(NamespaceRef::Id);
        }
        Some(NamespaceRef::Path(decoded.into_owned()))
    }

    /// The form the manager's `resolve_*` take: the id in decimal or the decoded path.
    pub fn as_lookup(&self) -> String {
        match self {
            NamespaceRef::Id(id) => id.to_string(),
            NamespaceRef::Path(path) => path.clone(),
        }
    }
}

/// A `:token_id`: GitLab answers 400 `token_id is invalid` for anything but an integer.
pub fn parse_token_id(raw: &str) -> Option<i64> {
    if raw.is_empty() || !raw.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    raw.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_ids_are_ids() {
        assert_eq!(NamespaceRef::parse("42"), Some(NamespaceRef::Id(42)));
        assert_eq!(NamespaceRef::parse("99999999999999999999999"), None);
    }

    #[test]
    fn encoded_paths_are_decoded_once() {
        assert_eq!(
            NamespaceRef::parse("acme%2Fplatform%2Fapi"),
            Some(NamespaceRef::Path("acme/platform/api".into()))
        );
        assert_eq!(
            NamespaceRef::parse("acme%2fapi"),
            Some(NamespaceRef::Path("acme/api".into()))
        );
        // `%252F` is a literal `%2F` in the name, not a second slash.
        assert_eq!(
            NamespaceRef::parse("acme%252Fapi"),
            Some(NamespaceRef::Path("acme%2Fapi".into()))
        );
        assert_eq!(
            NamespaceRef::parse("acme"),
            Some(NamespaceRef::Path("acme".into()))
        );
    }

    #[test]
    fn garbage_is_none() {
        assert_eq!(NamespaceRef::parse(""), None);
        assert_eq!(NamespaceRef::parse("%FF%FE"), None);
    }

    #[test]
    fn token_ids_are_plain_integers() {
        assert_eq!(parse_token_id("7"), Some(7));
        assert_eq!(parse_token_id("-7"), None);
        assert_eq!(parse_token_id("7a"), None);
        assert_eq!(parse_token_id(""), None);
    }
}
