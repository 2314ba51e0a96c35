//! Group and project paths (CLI, API, URLs): never a panic; an accepted path is one that
//! cannot climb out of the repositories directory and parses again to itself.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wvs_auth::domain::path::{NamespacePath, MAX_DEPTH, MAX_PATH_LEN};

fuzz_target!(|data: &str| {
    let Ok(path) = NamespacePath::parse(data) else {
        return;
    };
    let text = path.as_str();
    assert!(text.len() <= MAX_PATH_LEN);
    assert!(text.split('/').count() <= MAX_DEPTH);
    assert!(!text.starts_with('/') && !text.contains('\\') && !text.contains('\0'));
    assert!(text
        .split('/')
        .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.ends_with(".git")));
    assert_eq!(NamespacePath::parse(text).as_ref(), Ok(&path));
});
