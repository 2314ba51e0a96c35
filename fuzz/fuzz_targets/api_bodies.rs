//! Deploy-token create bodies of the API, as JSON or as a form (the first byte picks):
//! never a panic, and an accepted body holds no more than it was sent (a byte that is not
//! UTF-8 becomes U+FFFD, three bytes, in a form).
#![no_main]

use actix_web::http::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use libfuzzer_sys::fuzz_target;
use wvs_auth::api::body::parse;

fuzz_target!(|data: &[u8]| {
    let Some((first, body)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let content_type = match first % 3 {
        0 => "application/json",
        1 => "application/x-www-form-urlencoded",
        _ => "text/plain",
    };
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let Ok(parsed) = parse(&headers, body) else {
        return;
    };
    let held = parsed.name.as_deref().map_or(0, str::len)
        + parsed.username.as_deref().map_or(0, str::len)
        + parsed.expires_at.as_deref().map_or(0, str::len)
        + parsed.scopes.iter().map(String::len).sum::<usize>();
    assert!(held <= 3 * body.len(), "{held} bytes out of {}", body.len());
});
