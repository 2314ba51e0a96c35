//! What every request passes before any handler (SPEC §7): at most 8 KiB of headers, at most
//! so many requests in flight per client, and a request body that may not stall.
//!
//! The head already times out (actix, 5 s). A body did not: one client that sent a head and
//! then stopped held its connection, and whatever waited for the body (a `git http-backend`,
//! a file descriptor), for ever; a thousand of them stopped the server accepting. Bounding
//! the body's silence here, on the payload itself, covers every reader at once — handlers,
//! extractors, multipart — instead of each remembering to.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use futures_util::StreamExt;
use ipnet::IpNet;
use prometheus::IntCounter;

use super::client::{client_ip, client_key};
use super::error::ApiError;

type BoxedBody =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<web::Bytes, PayloadError>>>>;

pub const MAX_HEADER_BYTES: usize = 8 * 1024;
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The per-request bounds `serve` runs with (`--body-idle-timeout`,
/// `--max-requests-per-client`), and the table of requests in flight per client.
pub struct RequestLimits {
    body_idle: Duration,
    per_client: usize,
    trusted_proxies: Vec<IpNet>,
    /// Only clients with a request in flight have an entry, so the table is never larger
    /// than the number of requests being served.
    in_flight: Arc<Mutex<HashMap<String, usize>>>,
    /// Requests refused for having too many in flight (the metrics' `requests_in_flight`).
    refused: IntCounter,
}

/// One request in flight for its client; leaving drops the count.
struct InFlight {
    table: Arc<Mutex<HashMap<String, usize>>>,
    key: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = table.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                table.remove(&self.key);
            }
        }
    }
}

impl RequestLimits {
    pub fn new(
        body_idle: Duration,
        per_client: usize,
        trusted_proxies: Vec<IpNet>,
        refused: IntCounter,
    ) -> Self {
        Self {
            body_idle,
            per_client: per_client.max(1),
            trusted_proxies,
            in_flight: Arc::default(),
            refused,
        }
    }

    /// A slot for one more request of `client`, or `None` when it has `per_client` already.
    fn enter(&self, client: Option<IpAddr>) -> Option<InFlight> {
        let key = client_key(client);
        let mut table = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let n = table.entry(key.clone()).or_insert(0);
        if *n >= self.per_client {
            return None;
        }
        *n += 1;
        Some(InFlight {
            table: self.in_flight.clone(),
            key,
        })
    }

    /// `payload`, ending in an error as soon as `body_idle` passes without a byte.
    fn idle_bounded(&self, payload: Payload) -> Payload {
        let idle = self.body_idle;
        let stream = tokio_stream::StreamExt::timeout(payload, idle).map(move |item| match item {
            Ok(chunk) => chunk,
            Err(_) => Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("request body stalled for {} s", idle.as_secs()),
            ))),
        });
        // The first stall ends the body: readers stop at an error, and nothing may resume.
        let stream = stream.scan(false, |failed, item| {
            let next = if *failed { None } else { Some(item) };
            if matches!(next, Some(Err(_))) {
                *failed = true;
            }
            futures_util::future::ready(next)
        });
        Payload::from(Box::pin(stream) as BoxedBody)
    }
}

/// How long a client refused for having too many requests in flight is asked to wait.
const BUSY_RETRY_SECS: u64 = 1;

pub async fn bound_requests(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let size: usize = req
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum::<usize>()
        + req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if size > MAX_HEADER_BYTES {
        let response = ApiError::BadRequest(format!(
            "request line and headers exceed {MAX_HEADER_BYTES} bytes"
        ))
        .error_response();
        return Ok(req.into_response(response));
    }
    let Some(limits) = req.app_data::<web::Data<RequestLimits>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let client = client_ip(req.request(), &limits.trusted_proxies);
    let Some(_slot) = limits.enter(client) else {
        limits.refused.inc();
        let response = ApiError::Busy(BUSY_RETRY_SECS).error_response();
        return Ok(req.into_response(response));
    };
    let payload = req.take_payload();
    req.set_payload(limits.idle_bounded(payload));
    Ok(next.call(req).await?.map_into_boxed_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(body_idle: Duration, per_client: usize) -> RequestLimits {
        let refused = IntCounter::new("refused", "test").expect("counter");
        RequestLimits::new(body_idle, per_client, Vec::new(), refused)
    }

    #[test]
    fn each_client_gets_its_own_slots_and_gives_them_back() {
        let limits = limits(Duration::from_secs(1), 2);
        let a: Option<IpAddr> = "10.0.0.1".parse().ok();
        let b: Option<IpAddr> = "10.0.0.2".parse().ok();
        let first = limits.enter(a).expect("first");
        let second = limits.enter(a).expect("second");
        assert!(limits.enter(a).is_none(), "a third request in flight");
        assert!(limits.enter(b).is_some(), "another client is not affected");
        drop(first);
        let third = limits.enter(a).expect("a slot came back");
        drop((second, third));
        let table = limits.in_flight.lock().expect("lock");
        assert!(table.is_empty(), "{table:?}");
    }

    #[test]
    fn one_ipv6_host_is_one_client() {
        let limits = limits(Duration::from_secs(1), 1);
        let _held = limits.enter("2001:db8:1:2::1".parse().ok()).expect("first");
        assert!(limits.enter("2001:db8:1:2::ffff".parse().ok()).is_none());
        assert!(limits.enter("2001:db8:1:3::1".parse().ok()).is_some());
    }

    #[actix_web::test]
    async fn a_stalled_body_ends_in_an_error_and_stays_ended() {
        let limits = limits(Duration::from_millis(50), 1);
        let late = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(web::Bytes::from_static(b"late"))
        };
        let source = futures_util::stream::iter([Ok(web::Bytes::from_static(b"start"))])
            .chain(futures_util::stream::once(late));
        let boxed = Box::pin(source) as BoxedBody;
        let mut body = limits.idle_bounded(Payload::from(boxed));
        assert!(matches!(body.next().await, Some(Ok(_))));
        assert!(matches!(body.next().await, Some(Err(PayloadError::Io(_)))));
        assert!(body.next().await.is_none(), "a body that stalled resumed");
    }
}
