//! `cargo publish` bodies and sparse-index paths: never a panic; a split body accounts for
//! every byte; an accepted index line names a valid crate and a semver version and survives
//! a JSON round trip (it is stored and served as written); index paths map back to their
//! crate, and Cargo's name normalisation is idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wvs_auth::domain::package::{
    cargo_normalize, crate_index_path, crate_of_index_path, validate_crate_name,
};
use wvs_auth::realms::packages::cargo::{index_line, split_publish, IndexLine};

fuzz_target!(|data: &[u8]| {
    if let Ok((meta, krate)) = split_publish(data) {
        assert_eq!(meta.len() + krate.len() + 8, data.len());
        if let Ok(line) = index_line(meta, "cksum") {
            assert!(validate_crate_name(&line.name).is_ok(), "{:?}", line.name);
            assert!(semver::Version::parse(&line.vers).is_ok(), "{:?}", line.vers);
            for dep in &line.deps {
                assert!(validate_crate_name(&dep.name).is_ok(), "{:?}", dep.name);
            }
            let text = serde_json::to_string(&line).expect("an index line serialises");
            assert!(!text.contains('\n'), "one line per version");
            let back: IndexLine = serde_json::from_str(&text).expect("and reads back");
            assert_eq!(back, line);
        }
    }
    // The same bytes as an index path and as a crate name.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(name) = crate_of_index_path(text) {
        assert_eq!(crate_index_path(name), text.to_ascii_lowercase());
    }
    if validate_crate_name(text).is_ok() {
        // Index paths are lower-case: the crate comes back as Cargo asks for it.
        let lower = text.to_ascii_lowercase();
        assert_eq!(
            crate_of_index_path(&crate_index_path(text)),
            Some(lower.as_str())
        );
        let once = cargo_normalize(text);
        assert_eq!(cargo_normalize(&once), once);
    }
});
