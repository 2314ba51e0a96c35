//! LFS batch request bodies: never a panic; an accepted batch holds each object once, at
//! most `MAX_OBJECTS` of them, whatever the body repeated.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use wvs_auth::realms::git::lfs::{parse_batch, MAX_OBJECTS};

fuzz_target!(|data: &[u8]| {
    let Ok((_, objects)) = parse_batch(data) else {
        return;
    };
    assert!(objects.len() <= MAX_OBJECTS);
    let distinct: HashSet<&str> = objects.iter().map(|o| o.oid.as_str()).collect();
    assert_eq!(distinct.len(), objects.len(), "a duplicate object survived");
});
