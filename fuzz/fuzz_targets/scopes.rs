//! `scope=` values of `/jwt/auth`: never a panic; a scope that parses names a repository
//! path with no empty, `.` or `..` segment, and parses again to itself from its parts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wvs_auth::domain::scope::{parse_all, ResourceScope};

fuzz_target!(|data: &str| {
    let Ok(scopes) = parse_all(data.split(' ')) else {
        return;
    };
    for s in scopes {
        assert!(
            s.name
                .split('/')
                .all(|seg| !seg.is_empty() && seg != "." && seg != ".."),
            "{s:?}"
        );
        let class = s
            .class
            .as_ref()
            .map(|c| format!("({c})"))
            .unwrap_or_default();
        let again = format!(
            "{}{class}:{}:{}",
            s.resource_type,
            s.name,
            s.actions.join(",")
        );
        assert_eq!(ResourceScope::parse(&again).as_ref(), Ok(&s), "{again}");
    }
});
