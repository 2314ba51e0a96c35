//! The Docker token scope grammar: `type[(class)]:name:action[,action]*`.
//!
//! The type is split at the first `:` and the actions at the last, because repository names
//! may carry a host and port (`repository:localhost:5000/acme/api:pull`). Anything that does
//! not fit is a client error (400), never a silent grant.

use std::fmt;

/// Longest scope string we accept; names are at most 255 characters in distribution.
pub const MAX_SCOPE_LEN: usize = 1024;
/// Most scopes in one request; docker asks for one or two, a cross-repo mount for three.
pub const MAX_SCOPES: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("scope {0:?} is not of the form type[(class)]:name:actions")]
    Malformed(String),
    #[error("scope is longer than {MAX_SCOPE_LEN} characters")]
    TooLong,
    #[error("more than {MAX_SCOPES} scopes requested")]
    TooMany,
}

/// One requested (or granted) resource scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceScope {
    pub resource_type: String,
    pub class: Option<String>,
    pub name: String,
    pub actions: Vec<String>,
}

impl ResourceScope {
    pub fn wants(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action)
    }

    pub fn parse(raw: &str) -> Result<Self, ScopeError> {
        if raw.len() > MAX_SCOPE_LEN {
            return Err(ScopeError::TooLong);
        }
        let malformed = || ScopeError::Malformed(raw.to_string());
        let (type_part, rest) = raw.split_once(':').ok_or_else(malformed)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(malformed)?;

        let (resource_type, class) = match type_part.split_once('(') {
            None => (type_part, None),
            Some((t, c)) => {
                let c = c.strip_suffix(')').ok_or_else(malformed)?;
                if !is_word(c) {
                    return Err(malformed());
                }
                (t, Some(c.to_string()))
            }
        };
        if !is_word(resource_type) || !valid_name(name) {
            return Err(malformed());
        }
        let mut parsed: Vec<String> = Vec::new();
        for action in actions.split(',') {
            if !valid_action(action) {
                return Err(malformed());
            }
            if !parsed.iter().any(|a| a == action) {
                parsed.push(action.to_string());
            }
        }
        Ok(Self {
            resource_type: resource_type.to_string(),
            class,
            name: name.to_string(),
            actions: parsed,
        })
    }
}

impl fmt::Display for ResourceScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.resource_type)?;
        if let Some(class) = &self.class {
            write!(f, "({class})")?;
        }
        write!(f, ":{}:{}", self.name, self.actions.join(","))
    }
}

/// Parses every scope of a request. Each raw value may hold several scopes separated by
/// spaces (OAuth POST, and some clients on GET); empty pieces are ignored.
pub fn parse_all<'a, I>(raw: I) -> Result<Vec<ResourceScope>, ScopeError>
where
    I: IntoIterator<Item = &'a str>,
{
    let mut out = Vec::new();
    for value in raw {
        for piece in value.split(' ').filter(|p| !p.is_empty()) {
            if out.len() == MAX_SCOPES {
                return Err(ScopeError::TooMany);
            }
            out.push(ResourceScope::parse(piece)?);
        }
    }
    Ok(out)
}

fn is_word(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
}

/// Names are repository paths, possibly with `host:port/`; no whitespace or controls.
/// A resource name: distribution's alphabet, and path segments that are neither empty nor
/// `.` nor `..` — `acme/app/../../oss/lib` must not reach a grant as if it were a path.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'/' | b'.' | b'_' | b'-' | b':' | b'@')
        })
        && s.split('/')
            .all(|segment| !segment.is_empty() && segment != "." && segment != "..")
}

fn valid_action(s: &str) -> bool {
    s == "*" || is_word(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_and_empty_segments_are_malformed() {
        for bad in [
            "repository:acme/app/../../oss/lib:push",
            "repository:./acme:pull",
            "repository:acme//app:pull",
            "repository:acme/app/:pull",
            "repository:/acme:pull",
            "repository:acme/..:pull",
        ] {
            assert!(ResourceScope::parse(bad).is_err(), "{bad}");
        }
        assert!(ResourceScope::parse("repository:host:5000/acme/app.v2:pull").is_ok());
        assert!(ResourceScope::parse("repository:acme/app..x:pull").is_ok());
    }

    #[test]
    fn parses_plain_and_host_port_and_class() {
        let s = ResourceScope::parse("repository:acme/api:pull,push").expect("valid");
        assert_eq!(s.resource_type, "repository");
        assert_eq!(s.name, "acme/api");
        assert_eq!(s.actions, vec!["pull", "push"]);

        let s = ResourceScope::parse("repository:host:5000/acme/api:pull").expect("valid");
        assert_eq!(s.name, "host:5000/acme/api");

        let s = ResourceScope::parse("repository(plugin):vendor/plugin:pull").expect("valid");
        assert_eq!(s.class.as_deref(), Some("plugin"));
        assert_eq!(s.to_string(), "repository(plugin):vendor/plugin:pull");

        let s = ResourceScope::parse("registry:catalog:*").expect("valid");
        assert_eq!(s.actions, vec!["*"]);
    }

    #[test]
    fn splits_space_separated_and_repeated() {
        let all = parse_all([
            "repository:a/b:pull repository:c/d:push",
            "registry:catalog:*",
        ])
        .expect("valid");
        assert_eq!(all.len(), 3);
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "",
            "repository",
            "repository:acme",
            "repository::pull",
            ":acme:pull",
            "repository:acme:",
            "repository:acme:pull,",
            "repository(:acme:pull",
            "repository():acme:pull",
            "repository:ac me:pull",
            "repository:acme:pu ll",
            "repo\u{0}:acme:pull",
        ] {
            assert!(ResourceScope::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            ResourceScope::parse(&format!("repository:{}:pull", "a".repeat(2000))),
            Err(ScopeError::TooLong)
        );
    }

    #[test]
    fn duplicate_actions_collapse() {
        let s = ResourceScope::parse("repository:a:pull,pull,push").expect("valid");
        assert_eq!(s.actions, vec!["pull", "push"]);
    }

    mod properties {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(raw in ".{0,300}") {
                let _ = ResourceScope::parse(&raw);
                let _ = parse_all([raw.as_str()]);
            }

            #[test]
            fn never_panics_on_scope_like_text(raw in "[a-z():/*,.@ -]{0,80}") {
                let _ = parse_all([raw.as_str()]);
            }

            /// Whatever parses prints back to a string that parses to the same scope.
            #[test]
            fn round_trips(
                ty in "[a-z]{1,12}",
                class in proptest::option::of("[a-z]{1,8}"),
                host in proptest::option::of("[a-z]{1,8}:[0-9]{1,5}"),
                // Segments start with a letter or digit: `.` and `..` are not names.
                name in "[a-z0-9]{1,10}(/[a-z0-9][a-z0-9._-]{0,9}){0,4}",
                actions in proptest::collection::vec("[a-z]{1,8}|\\*", 1..4),
            ) {
                let name = match host { Some(h) => format!("{h}/{name}"), None => name };
                let class_part = class.as_ref().map(|c| format!("({c})")).unwrap_or_default();
                let raw = format!("{ty}{class_part}:{name}:{}", actions.join(","));
                let parsed = ResourceScope::parse(&raw).expect("generated scope is valid");
                prop_assert_eq!(&parsed.name, &name);
                prop_assert_eq!(&parsed.class, &class);
                let again = ResourceScope::parse(&parsed.to_string()).expect("printed scope parses");
                prop_assert_eq!(again, parsed);
            }
        }
    }
}
