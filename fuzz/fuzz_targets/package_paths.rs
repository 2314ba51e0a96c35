//! Package paths: npm routes (percent-decoded here, so the checks run on what the store
//! sees), generic coordinates and PyPI names. Never a panic; whatever is accepted holds no
//! traversal, and PEP 503 normalisation is idempotent.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wvs_auth::domain::package::{pep503_normalize, validate_generic, validate_pypi_name};
use wvs_auth::realms::packages::npm::{parse, Route};

fn safe(s: &str) {
    assert!(
        !s.split('/').any(|seg| seg == ".." || seg == ".")
            && !s.contains('\0')
            && !s.contains('\\'),
        "{s:?}"
    );
}

fuzz_target!(|data: &str| {
    if let Ok(route) = parse(data) {
        match route {
            Route::Package(n) | Route::Revision(n) | Route::Tags(n) => safe(&n),
            Route::Tarball { package, file } | Route::TarballRevision { package, file } => {
                safe(&package);
                safe(&file);
                assert!(!file.contains('/'));
            }
            Route::Tag { package, tag } => {
                safe(&package);
                safe(&tag);
            }
        }
    }
    let mut parts = data.splitn(3, '/');
    if let (Some(name), Some(version), Some(file)) = (parts.next(), parts.next(), parts.next()) {
        if validate_generic(name, version, file).is_ok() {
            safe(name);
            safe(version);
            safe(file);
            assert!(!file.contains('/'));
        }
    }
    if validate_pypi_name(data).is_ok() {
        let once = pep503_normalize(data);
        assert_eq!(pep503_normalize(&once), once);
    }
});
