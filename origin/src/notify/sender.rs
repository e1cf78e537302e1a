//! Sends one push to one subscription: the payload encrypted for the browser (RFC 8291
//! `aes128gcm`, by the `web-push` crate), a VAPID JWT (RFC 8292), a TTL and an urgency, POSTed
//! (RFC 8030) over a connection pinned to addresses that passed the endpoint policy. Retries
//! what may succeed later (network errors, 429, 5xx) with doubling backoff; reports what will
//! never succeed (404/410: the subscription is gone).

use super::endpoint;
use super::vapid::Vapid;
use crate::store::notify::PushSubscriptionRecord;
use confab_shared::preview::Allowlist;
use std::sync::Arc;
use std::time::Duration;
use web_push::{ContentEncoding, SubscriptionInfo, Urgency, WebPushMessageBuilder};

/// How long one request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How a push went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The push service took it.
    Sent,
    /// The subscription is gone (404/410, or its endpoint no longer passes the policy): forget it.
    Gone,
    /// Refused for good, or still failing after every retry.
    Failed,
}

/// Retry and delivery settings.
#[derive(Debug, Clone)]
pub struct SendSettings {
    /// Tries per push (the first included).
    pub attempts: u32,
    /// The wait before the first retry, doubled after each.
    pub backoff: Duration,
    /// How long the push service keeps an undelivered push (seconds).
    pub ttl_secs: u32,
}

/// The sender, shared by the dispatcher's tasks.
pub struct PushSender {
    vapid: Arc<Vapid>,
    allow: Allowlist,
    settings: SendSettings,
}

impl PushSender {
    pub fn new(vapid: Arc<Vapid>, allow: Allowlist, settings: SendSettings) -> Self {
        Self {
            vapid,
            allow,
            settings,
        }
    }

    /// Sends `payload` (JSON) to `sub`, retrying as the settings say.
    pub async fn send(&self, sub: &PushSubscriptionRecord, payload: &[u8], high: bool) -> Outcome {
        let mut wait = self.settings.backoff;
        for attempt in 1..=self.settings.attempts.max(1) {
            match self.try_send(sub, payload, high).await {
                Ok(()) => return Outcome::Sent,
                Err(Retry::Never(outcome)) => return outcome,
                Err(Retry::Later(why)) => {
                    tracing::debug!(attempt, %why, "push not delivered yet");
                    metrics::counter!("confab_push_retries_total").increment(1);
                    if attempt < self.settings.attempts {
                        tokio::time::sleep(wait).await;
                        wait *= 2;
                    }
                }
            }
        }
        Outcome::Failed
    }

    async fn try_send(
        &self,
        sub: &PushSubscriptionRecord,
        payload: &[u8],
        high: bool,
    ) -> Result<(), Retry> {
        let url =
            endpoint::check(&sub.endpoint, &self.allow).map_err(|_| Retry::Never(Outcome::Gone))?;
        let pinned = match endpoint::resolve(&url, &self.allow).await {
            Ok(p) => p,
            Err(endpoint::EndpointError::Unresolved) => {
                return Err(Retry::Later("the endpoint does not resolve".into()))
            }
            Err(_) => return Err(Retry::Never(Outcome::Gone)),
        };
        let info = SubscriptionInfo::new(
            sub.endpoint.as_str(),
            sub.p256dh.as_str(),
            sub.auth.as_str(),
        );
        let audience = url.origin().ascii_serialization();
        let signature = self
            .vapid
            .sign(&info, &audience)
            .map_err(|e| Retry::Never(failed(e)))?;
        let mut builder = WebPushMessageBuilder::new(&info);
        builder.set_payload(ContentEncoding::Aes128Gcm, payload);
        builder.set_vapid_signature(signature);
        builder.set_ttl(self.settings.ttl_secs);
        builder.set_urgency(if high { Urgency::High } else { Urgency::Normal });
        let message = builder.build().map_err(|e| Retry::Never(failed(e)))?;
        let request = web_push::request_builder::build_request::<Vec<u8>>(message);

        let mut client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(REQUEST_TIMEOUT);
        if let Some((name, addrs)) = &pinned {
            client = client.resolve_to_addrs(name, addrs);
        }
        let client = client.build().map_err(|e| Retry::Later(e.to_string()))?;
        let mut out = client.post(url);
        for (name, value) in request.headers() {
            if let Ok(v) = value.to_str() {
                out = out.header(name.as_str(), v);
            }
        }
        let resp = out
            .body(request.into_body())
            .send()
            .await
            .map_err(|e| Retry::Later(e.to_string()))?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            404 | 410 => Err(Retry::Never(Outcome::Gone)),
            429 | 500..=599 => Err(Retry::Later(format!("the push service answered {status}"))),
            _ => {
                tracing::warn!(status, "the push service refused a push");
                Err(Retry::Never(Outcome::Failed))
            }
        }
    }
}

enum Retry {
    Later(String),
    Never(Outcome),
}

fn failed(e: impl std::fmt::Display) -> Outcome {
    tracing::warn!(error = %e, "a push could not be prepared");
    Outcome::Failed
}
