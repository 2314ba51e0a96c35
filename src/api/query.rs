//! Query parameters of the list endpoints. Parsed by hand so a bad value is GitLab's
//! `400 {"error":"active is invalid"}` rather than actix's plain-text extractor error.

use super::error::GitlabError;

/// `?active=`: GitLab's Boolean (`true`/`false`, `1`/`0`); absent or empty means no filter.
/// Pagination parameters (`page`, `per_page`) are accepted and ignored: every token is on
/// the one page, which GitLab clients read as the last.
pub fn active_filter(query: &str) -> Result<Option<bool>, GitlabError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| GitlabError::BadRequest("query string is malformed".into()))?;
    let mut active = None;
    for (key, value) in pairs {
        if key != "active" {
            continue;
        }
        active = match value.to_ascii_lowercase().as_str() {
            "" => None,
            "true" | "1" => Some(true),
            "false" | "0" => Some(false),
            _ => return Err(GitlabError::BadRequest("active is invalid".into())),
        };
    }
    Ok(active)
}

/// `?created_after=` of the audit listing: an RFC 3339 instant.
pub fn created_after(query: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, GitlabError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| GitlabError::BadRequest("query string is malformed".into()))?;
    let Some((_, raw)) = pairs.into_iter().find(|(k, _)| k == "created_after") else {
        return Ok(None);
    };
    if raw.is_empty() {
        return Ok(None);
    }
    chrono::DateTime::parse_from_rfc3339(&raw)
        .map(|at| Some(at.with_timezone(&chrono::Utc)))
        .map_err(|_| GitlabError::BadRequest("created_after is invalid".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_values() {
        assert_eq!(active_filter("").expect("test input is valid"), None);
        assert_eq!(
            active_filter("active=true").expect("test input is valid"),
            Some(true)
        );
        assert_eq!(
            active_filter("per_page=100&active=0").expect("test input is valid"),
            Some(false)
        );
        assert_eq!(active_filter("active=").expect("test input is valid"), None);
        assert!(active_filter("active=maybe").is_err());
    }

    #[test]
    fn created_after_values() {
        assert!(created_after("").expect("test input is valid").is_none());
        assert!(created_after("created_after=2024-01-01T00:00:00Z")
            .expect("test input is valid")
            .is_some());
        assert!(
            created_after("created_after=2024-01-01T00%3A00%3A00%2B02%3A00")
                .expect("test input is valid")
                .is_some()
        );
        assert!(created_after("created_after=yesterday").is_err());
    }
}
