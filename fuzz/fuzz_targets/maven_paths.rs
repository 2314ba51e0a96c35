//! Maven paths (`parse_path` sees them percent-decoded, so any string is a possible
//! input): never a panic; whatever is accepted has only safe, non-empty segments and a
//! file named after its artifact, and a checksum file names the file it checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wvs_auth::domain::package::maven::{parse_path, Checksum};

fuzz_target!(|data: &str| {
    if let Ok(p) = parse_path(data) {
        for seg in p
            .group_path
            .split('/')
            .chain([p.artifact_id.as_str(), p.file_name.as_str()])
            .chain(p.version.as_deref())
        {
            assert!(
                !seg.is_empty() && seg != "." && !seg.contains(".."),
                "{data:?}"
            );
            assert!(!seg.contains(['/', '\\', '\0', '%']), "{data:?}");
        }
        assert!(p.is_metadata() || p.file_name.starts_with(&format!("{}-", p.artifact_id)));
        let last = data.rsplit('/').next().unwrap_or_default();
        match p.checksum {
            Some(c) => assert_eq!(last, format!("{}.{}", p.file_name, c.extension())),
            None => assert_eq!(last, p.file_name),
        }
    }
    for c in Checksum::ALL {
        if let Some(hex) = c.parse_body(data.as_bytes()) {
            assert!(hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        }
    }
});
