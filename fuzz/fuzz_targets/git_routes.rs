//! Git and LFS URL paths, raw as they arrive: never a panic; a recognised route names a
//! canonical project path (so nothing unvalidated reaches the filesystem) and an LFS object
//! by a 64-hex oid.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wvs_auth::domain::path::NamespacePath;
use wvs_auth::realms::git::route::{parse, Endpoint};

fuzz_target!(|data: &str| {
    let Some(route) = parse(data) else {
        return;
    };
    let repo = route.repo.as_str();
    assert!(!data.contains('%') && !data.contains("//") && !data.contains("/../"));
    assert_eq!(NamespacePath::parse(repo).as_ref(), Ok(&route.repo));
    assert!(data.starts_with(&format!("/{repo}")), "{data} -> {repo}");
    if let Endpoint::LfsObject(oid) = &route.endpoint {
        let oid = oid.as_str();
        assert!(oid.len() == 64 && oid.bytes().all(|c| c.is_ascii_hexdigit()));
    }
});
