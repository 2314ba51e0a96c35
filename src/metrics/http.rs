//! Requests as the metrics see them: the middleware that counts every answer by route,
//! method and status and times it, the fixed route names of the surfaces that serve many
//! paths from one handler, and the body wrapper that counts streamed bytes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Registry,
};

use super::{InFlight, Metrics, MetricsError};

/// The route of a request no route pattern matched and no handler named (mostly 404s).
pub const UNMATCHED: &str = "unmatched";

/// The token endpoint's route pattern: its 200s are counted with resolved handles.
const TOKEN_ROUTE: &str = "/jwt/auth";

/// Set by a handler that answers many paths from one default service (git, npm), so its
/// requests count under that fixed name rather than as unmatched.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// Names the route of `req` for the metrics (see [`RouteLabel`]).
pub fn label_route(req: &HttpRequest, route: &'static str) {
    req.extensions_mut().insert(RouteLabel(route));
}

/// The request counters and latency histograms.
pub(crate) struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
    in_flight: IntGauge,
    /// `GET` and `POST /jwt/auth` answered 200, resolved once: the hot path.
    token_ok: [(IntCounter, Histogram); 2],
}

impl HttpMetrics {
    pub(crate) fn new(registry: &Registry, buckets: &[f64]) -> Result<Self, MetricsError> {
        let requests = super::counter_vec(
            registry,
            "wvs_auth_http_requests_total",
            "HTTP requests answered, by route pattern, method and status code.",
            &["route", "method", "status"],
        )?;
        let duration = super::registered(
            registry,
            HistogramVec::new(
                HistogramOpts::new(
                    "wvs_auth_http_request_duration_seconds",
                    "Time to the response head, by route pattern and method (a streamed body \
                 goes on after it).",
                )
                .buckets(buckets.to_vec()),
                &["route", "method"],
            ),
        )?;
        let in_flight = super::registered(
            registry,
            IntGauge::new(
                "wvs_auth_http_requests_in_flight",
                "HTTP requests being handled now.",
            ),
        )?;
        let token_ok = ["GET", "POST"].map(|method| {
            (
                requests.with_label_values(&[TOKEN_ROUTE, method, "200"]),
                duration.with_label_values(&[TOKEN_ROUTE, method]),
            )
        });
        Ok(Self {
            requests,
            duration,
            in_flight,
            token_ok,
        })
    }

    fn record(&self, route: &str, method: &'static str, status: &str, seconds: f64) {
        if route == TOKEN_ROUTE && status == "200" {
            let resolved = match method {
                "GET" => Some(&self.token_ok[0]),
                "POST" => Some(&self.token_ok[1]),
                _ => None,
            };
            if let Some((count, time)) = resolved {
                count.inc();
                time.observe(seconds);
                return;
            }
        }
        self.requests
            .with_label_values(&[route, method, status])
            .inc();
        self.duration
            .with_label_values(&[route, method])
            .observe(seconds);
    }
}

/// The `method` label: the methods wvs-auth answers, anything else `other`.
pub fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// The `route` label of an answered request: the route pattern it matched (the path is
/// matched again when the request never reached the router, as a 429 of the limits), else
/// the name its handler set, else [`UNMATCHED`].
pub fn route_label(req: &HttpRequest) -> RouteName {
    if let Some(pattern) = req.match_pattern() {
        return RouteName::Pattern(pattern);
    }
    let named = req.extensions().get::<RouteLabel>().map(|l| l.0);
    RouteName::Fixed(named.unwrap_or(UNMATCHED))
}

/// A route label, borrowed when it is a fixed name.
pub enum RouteName {
    Pattern(String),
    Fixed(&'static str),
}

impl RouteName {
    pub fn as_str(&self) -> &str {
        match self {
            RouteName::Pattern(p) => p,
            RouteName::Fixed(f) => f,
        }
    }
}

/// The outermost middleware: counts and times every answer, those of the limits included.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(metrics) = req.app_data::<web::Data<Metrics>>().cloned() else {
        return Ok(next.call(req).await?.map_into_boxed_body());
    };
    let http = metrics.http();
    let method = method_label(req.method());
    let started = Instant::now();
    let _in_flight = InFlight::enter(&http.in_flight);
    match next.call(req).await {
        Ok(res) => {
            let seconds = started.elapsed().as_secs_f64();
            let route = route_label(res.request());
            http.record(route.as_str(), method, res.status().as_str(), seconds);
            Ok(res.map_into_boxed_body())
        }
        Err(e) => {
            let seconds = started.elapsed().as_secs_f64();
            let status = e.as_response_error().status_code();
            http.record(UNMATCHED, method, status.as_str(), seconds);
            Err(e)
        }
    }
}

/// `response` with its body counted into `served` as it streams out: each chunk when it is
/// handed to the connection, so an aborted download counts what was sent, not its length.
pub fn count_body(response: HttpResponse, served: &IntCounter) -> HttpResponse {
    let served = served.clone();
    response.map_body(|_, body| BoxBody::new(Counted { body, served }))
}

struct Counted {
    body: BoxBody,
    served: IntCounter,
}

impl MessageBody for Counted {
    type Error = Box<dyn std::error::Error>;

    /// The inner size, so a known length still goes out as `Content-Length`.
    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.body).poll_next(cx);
        if let Poll::Ready(Some(Ok(chunk))) = &polled {
            this.served.inc_by(chunk.len() as u64);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{test, App, HttpResponse};

    async fn ok() -> HttpResponse {
        HttpResponse::Ok().body("ok")
    }

    async fn named(req: HttpRequest) -> HttpResponse {
        label_route(&req, "/{repository}.git/info/refs");
        HttpResponse::Ok().finish()
    }

    fn count(text: &str, series: &str) -> u64 {
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    #[actix_web::test]
    async fn routes_are_patterns_or_fixed_names_never_paths() {
        let metrics = web::Data::new(Metrics::new(&[]).expect("metrics"));
        let app = test::init_service(
            App::new()
                .app_data(metrics.clone())
                .wrap(actix_web::middleware::from_fn(observe))
                .route("/jwt/auth", web::get().to(ok))
                .service(
                    web::scope("/api/v4/projects/{id}/packages/generic")
                        .route("/{name}/{version}/{file}", web::get().to(ok)),
                )
                .service(web::scope("/api/v4/packages/npm").default_service(web::to(named)))
                .default_service(web::to(HttpResponse::NotFound)),
        )
        .await;
        for uri in [
            "/jwt/auth?service=x",
            "/jwt/auth",
            "/api/v4/projects/acme%2Fapp/packages/generic/n/1.0/f.bin",
            "/api/v4/packages/npm/@acme/app",
            "/secret-repo-name/info/refs",
        ] {
            test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
        }
        let req = test::TestRequest::default()
            .method(Method::from_bytes(b"BREW").expect("method"))
            .uri("/jwt/auth")
            .to_request();
        test::call_service(&app, req).await;
        let text = metrics.render().expect("render");
        let series = |route: &str, method: &str, status: &str| {
            format!(
                "wvs_auth_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}}"
            )
        };
        assert_eq!(
            count(&text, &series("/jwt/auth", "GET", "200")),
            2,
            "{text}"
        );
        assert_eq!(
            count(
                &text,
                &series(
                    "/api/v4/projects/{id}/packages/generic/{name}/{version}/{file}",
                    "GET",
                    "200"
                )
            ),
            1,
            "{text}"
        );
        assert_eq!(
            count(&text, &series("/{repository}.git/info/refs", "GET", "200")),
            1,
            "{text}"
        );
        assert_eq!(count(&text, &series(UNMATCHED, "GET", "404")), 1, "{text}");
        assert!(!text.contains("secret-repo-name"), "{text}");
        assert!(!text.contains("acme"), "{text}");
        assert!(!text.contains("BREW"), "{text}");
        assert_eq!(
            count(
                &text,
                "wvs_auth_http_request_duration_seconds_count{method=\"GET\",route=\"/jwt/auth\"}"
            ),
            2
        );
        assert_eq!(count(&text, "wvs_auth_http_requests_in_flight"), 0);
    }

    #[actix_web::test]
    async fn counted_bodies_count_what_streams_and_keep_their_length() {
        let served = IntCounter::new("served", "test").expect("counter");
        let chunks = ["abc", "defgh"].map(|c| Ok::<_, std::io::Error>(Bytes::from(c)));
        let response = HttpResponse::Ok()
            .no_chunking(8)
            .streaming(futures_util::stream::iter(chunks));
        let response = count_body(response, &served);
        assert!(matches!(response.body().size(), BodySize::Sized(8)));
        let body = actix_web::body::to_bytes(response.into_body())
            .await
            .expect("body");
        assert_eq!(&body[..], b"abcdefgh");
        assert_eq!(served.get(), 8);
    }
}
