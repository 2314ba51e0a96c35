//! Dependency Proxy paths under `/v2/`: never a panic; a recognised object names a valid
//! group path and image, and a blob is always asked for by digest.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wvs_auth::domain::dependency_proxy::valid_image;
use wvs_auth::domain::path::NamespacePath;
use wvs_auth::realms::dependency_proxy::route::{parse, valid_digest, ObjectKind, Route};

fuzz_target!(|data: &str| {
    let Some(Route::Object {
        image,
        kind,
        reference,
    }) = parse(data)
    else {
        return;
    };
    assert_eq!(
        NamespacePath::parse(image.group.as_str()).as_ref(),
        Ok(&image.group)
    );
    assert!(valid_image(&image.image), "{image:?}");
    assert!(!data.contains('%'));
    if kind == ObjectKind::Blob {
        assert!(valid_digest(&reference));
    }
});
