//! `Authorization: Basic …` as clients send it, and as attackers do: never a panic, and
//! whatever `user:secret` a client encodes comes back exactly.
#![no_main]

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use libfuzzer_sys::fuzz_target;
use wvs_auth::auth::credentials::parse_basic;

fuzz_target!(|data: &[u8]| {
    let _ = parse_basic(data);
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((user, secret)) = text.split_once(':') else {
        return;
    };
    let header = format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")));
    let c = parse_basic(header.as_bytes()).expect("a well-formed header parses");
    assert_eq!(c.username, user);
    assert_eq!(secrecy::ExposeSecret::expose_secret(&c.secret), secret);
});
