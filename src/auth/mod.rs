//! The one authentication step of every surface — the registry's token endpoint, git and
//! LFS, the management API and the sign-in page (and the package realm to come): read the
//! credentials the surface's [`Policy`] names, refuse a throttled client before looking at
//! them, authenticate (storage and argon2 off the async workers), count and audit a
//! failure, record a deploy token's use. Handlers get a [`Principal`] or an [`AuthFailure`]
//! to word in their own protocol; the rules decide what the principal may do.

pub mod credentials;
pub mod policy;
pub mod throttle;
pub mod usage;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::HttpRequest;
use chrono::Utc;

use crate::domain::audit::{AuditAction, NewAuditEvent};
use crate::domain::authn::{authenticate, AuthnError, Presented, SecretKind, Stores};
use crate::domain::principal::Principal;
use crate::domain::store::{AuditLog, RealmReads, StoreError};
use crate::metrics::AuthMetrics;
use crate::request::client::{client_ip, client_key, loggable_username};
use crate::request::refusals::{Sampler, Suppressed};
use crate::store::Reads;
pub use credentials::{BasicError, Source};
pub use policy::{Policy, Requirement, Surface};
use throttle::{throttle_keys, Refusal, Throttle};

/// How long a password check waits for the checks in flight of its keys (a burst of
/// parallel sign-ins of one user) before it is refused as throttled.
const CHARGE_WAIT: Duration = Duration::from_secs(10);
use usage::UsageRecorder;

/// Why a request gets no principal. The reason of a refusal is for the log only: clients
/// see one generic 401 whatever it was.
#[derive(Debug, thiserror::Error)]
pub enum AuthFailure {
    /// Credentials that cannot be read (bad base64, no colon, another scheme): 400.
    #[error(transparent)]
    Malformed(#[from] BasicError),
    /// Too many recent failures: retry after this many seconds.
    #[error("too many failed authentications; retry in {0} seconds")]
    Throttled(u64),
    /// None presented where the surface needs some.
    #[error("credentials required")]
    CredentialsRequired,
    /// Wrong, revoked or expired credentials, or a kind the surface does not take.
    #[error(transparent)]
    Refused(AuthnError),
    /// Authenticated, but the credential lacks what the surface requires (a PAT without
    /// `api` at the management API): 403.
    #[error("insufficient scope")]
    InsufficientScope,
    /// Storage did not answer (already logged).
    #[error("storage unavailable")]
    Unavailable,
}

/// Who is on the other end, for the throttle and the access log.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub ip: Option<IpAddr>,
    /// The presented username as it may be logged (never a secret); empty if none.
    pub user: String,
}

impl Client {
    /// The address as the log writes it (`""` when unknown).
    pub fn ip_text(&self) -> String {
        self.ip.map(|ip| ip.to_string()).unwrap_or_default()
    }
}

/// One request's credentials, read but not yet checked: handlers log `client` whatever the
/// outcome.
pub struct Attempt {
    pub client: Client,
    presented: Result<Option<Presented>, BasicError>,
    policy: &'static Policy,
}

impl Attempt {
    /// Were the credentials unreadable? Surfaces that answer malformed input before
    /// anything else (the token endpoint) ask first.
    pub fn malformed(&self) -> Option<&BasicError> {
        self.presented.as_ref().err()
    }
}

pub struct Authenticator {
    reads: Reads,
    audit: Arc<dyn AuditLog>,
    throttle: Throttle,
    usage: Arc<UsageRecorder>,
    trusted_proxies: Vec<ipnet::IpNet>,
    /// The audit log's budget for failed authentications ([`AUDIT_BUDGET`]).
    audit_sampler: Sampler,
    /// Refusals by surface and reason, and throttled attempts, for `/-/metrics`.
    metrics: AuthMetrics,
}

/// Failed authentications audited one by one per minute: 30 per client (the throttle's
/// default failure limit, so a client is usually banned before it runs out), 600 in all.
/// The rest become one `auth_failures_summarized` row per minute.
pub const AUDIT_BUDGET: (u32, u32) = (30, 600);

impl Authenticator {
    pub fn new(
        reads: Reads,
        audit: Arc<dyn AuditLog>,
        throttle: Throttle,
        usage: Arc<UsageRecorder>,
        trusted_proxies: Vec<ipnet::IpNet>,
        metrics: AuthMetrics,
    ) -> Self {
        Self {
            reads,
            audit,
            throttle,
            usage,
            trusted_proxies,
            metrics,
            audit_sampler: Sampler::new(
                Duration::from_secs(60),
                AUDIT_BUDGET.0,
                AUDIT_BUDGET.1,
                Instant::now(),
            ),
        }
    }

    /// The client's address (behind trusted proxies, the forwarded one).
    pub fn client_ip(&self, req: &HttpRequest) -> Option<IpAddr> {
        client_ip(req, &self.trusted_proxies)
    }

    /// The credentials `req`'s headers carry, from the sources `policy` names.
    pub fn attempt(&self, req: &HttpRequest, policy: &'static Policy) -> Attempt {
        let presented = credentials::presented(req.headers(), policy.sources);
        self.attempt_with(self.client_ip(req), presented, policy)
    }

    /// Credentials that came another way: an OAuth form body, the sign-in form.
    pub fn attempt_with(
        &self,
        ip: Option<IpAddr>,
        presented: Result<Option<Presented>, BasicError>,
        policy: &'static Policy,
    ) -> Attempt {
        let user = match &presented {
            Ok(Some(p)) => p.username().map(loggable_username).unwrap_or_default(),
            _ => String::new(),
        };
        Attempt {
            client: Client { ip, user },
            presented,
            policy,
        }
    }

    /// Checks the attempt. `account`, when the protocol carries one (Docker's `account=`),
    /// must equal the username. Refusals and throttled attempts are counted here, once for
    /// every surface.
    pub async fn check(
        &self,
        attempt: &Attempt,
        account: Option<&str>,
    ) -> Result<Principal, AuthFailure> {
        let checked = self.check_uncounted(attempt, account).await;
        match &checked {
            Err(AuthFailure::Refused(reason)) => {
                self.metrics.refused(attempt.policy.surface.name(), reason)
            }
            Err(AuthFailure::Throttled(_)) => self.metrics.throttled(),
            _ => {}
        }
        checked
    }

    async fn check_uncounted(
        &self,
        attempt: &Attempt,
        account: Option<&str>,
    ) -> Result<Principal, AuthFailure> {
        let policy = attempt.policy;
        let presented = attempt.presented.as_ref().map_err(Clone::clone)?;
        let keys = throttle_keys(
            attempt.client.ip,
            presented.as_ref().and_then(Presented::username),
        );
        let started = Instant::now();
        let Some(presented) = presented else {
            if let Some(secs) = self.throttle.banned(&keys, started) {
                return Err(AuthFailure::Throttled(secs));
            }
            return if policy.anonymous {
                Ok(Principal::Anonymous)
            } else {
                Err(AuthFailure::CredentialsRequired)
            };
        };
        // A ban stops failing credentials and password checks, never a valid token (SPEC
        // §7): tokens are looked up by digest first (cheap), and only a failing one meets
        // the ban. A password check is charged as a failure before it runs, so a burst of
        // parallel guesses gets at most `max_failures` argon2 runs per window.
        let charge = if presented.kind() == SecretKind::Password && policy.accepts.passwords {
            Some(self.charge(&keys).await?)
        } else {
            None
        };
        let result = match account {
            Some(account) if Some(account) != presented.username() => {
                Err(AuthnError::UsernameMismatch)
            }
            _ => self.authenticate(presented, policy).await,
        };
        let failed = matches!(&result, Err(e) if !matches!(e, AuthnError::Store(_)));
        let charged = charge.is_some();
        if let Some(charge) = charge {
            self.throttle.settle(charge, failed, Instant::now());
        }
        let principal = match result {
            Ok(principal) => principal,
            Err(AuthnError::Store(e)) => {
                log::error!("credential lookup failed: {e}");
                return Err(AuthFailure::Unavailable);
            }
            Err(reason) => {
                if !charged {
                    if let Some(secs) = self.throttle.banned(&keys, started) {
                        // Already banned: neither counted nor audited again, so a flood of
                        // a banned client costs one lookup each and leaves no trace.
                        return Err(AuthFailure::Throttled(secs));
                    }
                    self.throttle.record_failure(&keys, started);
                }
                self.audit_failure(attempt, &reason).await;
                return Err(AuthFailure::Refused(reason));
            }
        };
        if !policy.requirement.met_by(&principal) {
            return Err(AuthFailure::InsufficientScope);
        }
        if let Principal::DeployToken(t) = &principal {
            self.usage.touch(t.id, Utc::now());
        }
        Ok(principal)
    }

    /// A place for a password check: waits (bounded) while checks in flight fill the
    /// keys' limit, refuses at once while one is banned.
    async fn charge(&self, keys: &[String]) -> Result<throttle::Charge, AuthFailure> {
        let deadline = Instant::now() + CHARGE_WAIT;
        loop {
            match self.throttle.charge(keys, Instant::now()) {
                Ok(charge) => return Ok(charge),
                Err(Refusal::Banned(secs)) => return Err(AuthFailure::Throttled(secs)),
                Err(Refusal::Busy) if Instant::now() < deadline => {
                    actix_web::rt::time::sleep(Duration::from_millis(20)).await;
                }
                Err(Refusal::Busy) => return Err(AuthFailure::Throttled(1)),
            }
        }
    }

    /// Tokens from memory when the cache has them, else on the storage pool; passwords on
    /// the hashing pool, whose bound keeps a burst of argon2 from taking every thread.
    async fn authenticate(
        &self,
        presented: &Presented,
        policy: &Policy,
    ) -> Result<Principal, AuthnError> {
        let accepts = policy.accepts;
        let decide = move |reads: &dyn RealmReads, presented: &Presented| {
            authenticate(Stores::of(reads), presented, accepts, Utc::now())
        };
        if presented.kind() == SecretKind::Password && accepts.passwords {
            let presented = presented.clone();
            return self
                .reads
                .run_hashing(move |reads| decide(reads, &presented))
                .await;
        }
        self.reads.run(presented, decide).await
    }

    /// Failed authentications go to the audit log (SPEC §7), on every surface. The throttle
    /// bounds how many one client can cause; a failed write is logged and never changes
    /// the answer.
    async fn audit_failure(&self, attempt: &Attempt, reason: &AuthnError) {
        let admission = self
            .audit_sampler
            .admit(&client_key(attempt.client.ip), Instant::now());
        if let Some(summary) = admission.summary {
            self.write_audit(summary_event(&summary)).await;
        }
        if !admission.record {
            return;
        }
        let event = NewAuditEvent {
            action: AuditAction::AuthFailure,
            actor: (!attempt.client.user.is_empty()).then(|| attempt.client.user.clone()),
            actor_user_id: None,
            deploy_token_id: match reason {
                AuthnError::Revoked(id) | AuthnError::Expired(id) => Some(*id),
                _ => None,
            },
            target: None,
            detail: Some(format!(
                "ip={} surface={} reason={reason}",
                attempt.client.ip.map_or("-".to_string(), |p| p.to_string()),
                attempt.policy.surface
            )),
        };
        self.write_audit(event).await;
    }

    /// For the housekeeping thread: the summary row of a window that ended with no failure
    /// since.
    pub fn flush_audit_summary(&self) {
        if let Some(summary) = self.audit_sampler.roll(Instant::now()) {
            if let Err(e) = self.audit.record_audit(&summary_event(&summary)) {
                log::warn!("could not write the audit log: {e}");
            }
        }
    }

    async fn write_audit(&self, event: NewAuditEvent) {
        let audit = self.audit.clone();
        let written = self
            .reads
            .pool()
            .storage(move || audit.record_audit(&event))
            .await
            .unwrap_or_else(|e| Err(StoreError::Unavailable(e.to_string())));
        if let Err(e) = written {
            log::warn!("could not write the audit log: {e}");
        }
    }

    /// The reads behind authentication, for the realms' own decisions.
    pub fn reads(&self) -> &Reads {
        &self.reads
    }
}

fn summary_event(summary: &Suppressed) -> NewAuditEvent {
    NewAuditEvent {
        action: AuditAction::AuthFailuresSummarized,
        actor: None,
        actor_user_id: None,
        deploy_token_id: None,
        target: None,
        detail: Some(format!(
            "{} failed authentications in {} s not recorded one by one; most from {} ({})",
            summary.count,
            summary.window.as_secs(),
            summary.top.0,
            summary.top.1
        )),
    }
}
