//! Who is on the other end of a request, for throttling and the access log.
//!
//! Behind a reverse proxy or load balancer every TCP peer is the proxy, so one
//! misconfigured CI job would get everyone banned. When the peer is a configured trusted
//! proxy, the client is the rightmost `X-Forwarded-For` address that is not itself a
//! trusted proxy (the leftmost entries are whatever the client claimed, so never those).

use std::net::IpAddr;

use actix_web::HttpRequest;
use ipnet::IpNet;

use crate::domain::deploy_token::SECRET_PREFIX;
use crate::domain::personal_access_token::PAT_PREFIX;

pub fn client_ip(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr().map(|a| a.ip())?;
    if !is_trusted(peer, trusted) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| part.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(*ip, trusted))
            .unwrap_or(peer),
    )
}

/// One client, as throttles and per-client limits count it: an IPv4 address, or the /64 of
/// an IPv6 one (the block one host usually controls).
pub fn client_key(ip: Option<IpAddr>) -> String {
    match ip {
        Some(IpAddr::V6(v6)) => {
            let s = v6.segments();
            format!("ip6:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(IpAddr::V4(v4)) => format!("ip:{v4}"),
        None => "ip:unknown".to_string(),
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    trusted.iter().any(|net| net.contains(&ip))
}

/// A secret pasted as the username (`docker login -u wvsdt-…`, a PAT alike) must not reach
/// the log or the audit log, and a huge one must not flood them.
pub fn loggable_username(username: &str) -> String {
    if [SECRET_PREFIX, PAT_PREFIX]
        .iter()
        .any(|p| username.starts_with(p))
    {
        "<redacted: looks like a secret>".to_string()
    } else {
        username.chars().take(255).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|n| n.parse().expect("cidr")).collect()
    }

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let req = TestRequest::default()
            .peer_addr("203.0.113.7:4000".parse().expect("addr"))
            .insert_header(("X-Forwarded-For", "10.9.9.9"))
            .to_http_request();
        assert_eq!(
            client_ip(&req, &nets(&["127.0.0.1/32"])),
            "203.0.113.7".parse().ok()
        );
    }

    #[test]
    fn trusted_proxy_forwards_the_rightmost_untrusted_address() {
        let req = TestRequest::default()
            .peer_addr("127.0.0.1:4000".parse().expect("addr"))
            .insert_header(("X-Forwarded-For", "1.1.1.1, 198.51.100.4, 10.0.0.2"))
            .to_http_request();
        let trusted = nets(&["127.0.0.1/32", "10.0.0.0/8"]);
        assert_eq!(client_ip(&req, &trusted), "198.51.100.4".parse().ok());
        let bare = TestRequest::default()
            .peer_addr("127.0.0.1:4000".parse().expect("addr"))
            .to_http_request();
        assert_eq!(client_ip(&bare, &trusted), "127.0.0.1".parse().ok());
    }

    #[test]
    fn secret_like_usernames_are_redacted() {
        assert!(loggable_username("wvsdt-abc").contains("redacted"));
        assert!(loggable_username("wvspat-abc").contains("redacted"));
        assert_eq!(loggable_username("ci-bot"), "ci-bot");
        assert_eq!(loggable_username(&"a".repeat(1000)).len(), 255);
    }
}
