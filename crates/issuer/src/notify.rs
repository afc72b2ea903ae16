//! The member notifier (docs/app-download.md §4, S15): one task per issuer instance sends the
//! outbox's due member notifications to their providers, woken when a receipt queues one and
//! every second. A row is claimed by a conditional update of its lease (30 s), so of several
//! instances on one database one sends it at a time. One card's notifications to one provider
//! go in receipt-counter order (the provider refuses a counter that does not increase): a row
//! is not due while an earlier one of the same card and provider is undelivered, whether it
//! is backing off, stuck or being sent. The body was fixed when the row was queued and each
//! send is a fresh party request (new nonce). A 2xx is the acknowledgment (`delivered`); no
//! answer or a 5xx is retried after 2^attempts s (at most 300, plus a jitter seeded by the
//! operation); a 4xx makes the row `stuck`, still retried every 300 s and shown to operators
//! (`POST /v1/notifications/{op}/retry` makes it due at once). A provider the issuer's policy
//! does not allow when the row is due is sent nothing (the body is personal information): the
//! row is stuck as after a 4xx, and delivered once the provider is allowed again. "Now" is the
//! issuer's clock (`server_kit::Clock`), so tests move time with a manual clock; the task's
//! own waiting is real time.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use party_api::provider_download::MemberNotification;
use pki::UnixTime;
use protocol::OperationId;
use server_kit::{Counter, Metrics};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::provider_link::LinkError;
use crate::service::{Issuer, ServiceError};
use crate::store::{NotificationRecord, NotificationState, ProviderStatus, SendOutcome};

/// How long a claimed row is held before another notifier may take it.
pub const LEASE_S: u64 = 30;
/// The longest backoff, and how often a stuck row is tried again.
pub const MAX_BACKOFF_S: u64 = 300;
/// How often the task looks for due rows without being woken.
pub const TICK: Duration = Duration::from_secs(1);
/// The error a row keeps while its provider's policy is not `allowed` (nothing is sent).
pub const NOT_ALLOWED: &str = "provider not allowed by the issuer's policy";
/// Rows claimed per round at most.
const BATCH: u32 = 32;

/// What one round did (how many rows ended each way).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Round {
    pub delivered: u32,
    /// Not acknowledged (no answer, 5xx): due again after the backoff.
    pub retried: u32,
    /// Refused (4xx) or not sendable (no URL, provider not allowed): retried every 300 s.
    pub stuck: u32,
    /// Due rows another notifier claimed first.
    pub skipped: u32,
}

#[derive(Debug)]
struct Outcomes {
    delivered: Counter,
    retried: Counter,
    stuck: Counter,
}

/// The notifier of one issuer instance. Dropping the last reference (the [`crate::App`] and
/// the router's state hold one each) stops its task.
#[derive(Debug)]
pub struct Notifier {
    issuer: Arc<Issuer>,
    /// This instance's lease holder name (random).
    holder: String,
    wake: Arc<Notify>,
    task: OnceLock<JoinHandle<()>>,
    outcomes: Outcomes,
}

/// The backoff after the `attempts`-th failed attempt: 2^attempts s, at most 300, plus up to a
/// quarter more by a jitter seeded by the operation (instances agree on it; operations spread).
pub fn backoff_s(operation_id: &OperationId, attempts: u32) -> u64 {
    let base = 1u64
        .checked_shl(attempts.min(32))
        .unwrap_or(u64::MAX)
        .min(MAX_BACKOFF_S);
    let mut seed = operation_id.0.to_vec();
    seed.extend_from_slice(&attempts.to_be_bytes());
    let digest = crypto::sha256(&seed);
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest.0[..8]);
    base + u64::from_be_bytes(first) % (base / 4 + 1)
}

/// The outcome of a failed send: 4xx (the provider refused what we sent) → stuck; no answer,
/// 5xx or an unreadable answer → pending with backoff.
fn failed(
    error: &LinkError,
    operation_id: &OperationId,
    attempts: u32,
    now: UnixTime,
) -> SendOutcome {
    let refused = match error {
        LinkError::Refused { status, .. } => (400..500).contains(status),
        LinkError::UnusableUrl { .. } | LinkError::Request { .. } => true,
        LinkError::Unreachable { .. } | LinkError::InvalidAnswer { .. } => false,
    };
    stuck_or_pending(refused, error.to_string(), operation_id, attempts, now)
}

fn stuck_or_pending(
    stuck: bool,
    error: String,
    operation_id: &OperationId,
    attempts: u32,
    now: UnixTime,
) -> SendOutcome {
    let (state, delay) = if stuck {
        (NotificationState::Stuck, MAX_BACKOFF_S)
    } else {
        (
            NotificationState::Pending,
            backoff_s(operation_id, attempts),
        )
    };
    SendOutcome::Failed {
        state,
        next_attempt_at: UnixTime(now.0.saturating_add(delay)),
        error,
    }
}

impl Notifier {
    /// A notifier for `issuer` (not started), counting outcomes in
    /// `issuer_member_notifications_total{outcome}`.
    pub fn new(issuer: Arc<Issuer>, metrics: &Metrics) -> Arc<Notifier> {
        const NAME: &str = "issuer_member_notifications_total";
        const HELP: &str =
            "Member notification attempts by outcome (delivered, retried: no answer or 5xx, stuck: 4xx, no url or provider not allowed).";
        let holder = hex::encode(issuer.random::<8>());
        Arc::new(Notifier {
            issuer,
            holder,
            wake: Arc::new(Notify::new()),
            task: OnceLock::new(),
            outcomes: Outcomes {
                delivered: metrics.labelled_counter(NAME, HELP, "outcome", "delivered"),
                retried: metrics.labelled_counter(NAME, HELP, "outcome", "retried"),
                stuck: metrics.labelled_counter(NAME, HELP, "outcome", "stuck"),
            },
        })
    }

    /// The name this instance's leases carry.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Starts the task (a first round at once, then on every wake and every [`TICK`]), until
    /// [`Notifier::stop`] or the last reference is dropped. Started twice, does nothing.
    pub fn start(self: &Arc<Self>) {
        if self.task.get().is_some() {
            return;
        }
        // The task holds only a weak reference: it must not keep the issuer alive itself.
        let weak = Arc::downgrade(self);
        let wake = self.wake.clone();
        let task = tokio::spawn(async move {
            loop {
                {
                    let Some(this) = weak.upgrade() else { break };
                    if let Err(error) = this.run_once().await {
                        tracing::warn!(%error, "member notifier round failed; trying again");
                    }
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(TICK) => {}
                }
            }
        });
        if let Err(second) = self.task.set(task) {
            second.abort();
        }
    }

    /// Wakes the task now (a row was queued or made due). A wake during a round is kept for
    /// after it.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the task; rows it holds are taken by others when their lease ends.
    pub fn stop(&self) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
    }

    pub fn is_running(&self) -> bool {
        self.task.get().is_some_and(|task| !task.is_finished())
    }

    /// One round: claims the due rows it can and sends each once.
    pub async fn run_once(&self) -> Result<Round, ServiceError> {
        let mut round = Round::default();
        let store = &self.issuer.store;
        let now = self.issuer.clock.now();
        for operation_id in store.due_notifications(now, BATCH).await? {
            let now = self.issuer.clock.now();
            let lease_until = UnixTime(now.0.saturating_add(LEASE_S));
            let Some(row) = store
                .claim_notification(&operation_id, &self.holder, now, lease_until)
                .await?
            else {
                round.skipped += 1;
                continue;
            };
            let outcome = self.send(&row).await;
            let recorded = store
                .finish_notification(&operation_id, &self.holder, &outcome)
                .await?;
            match &outcome {
                SendOutcome::Delivered { .. } => {
                    round.delivered += 1;
                    self.outcomes.delivered.increment();
                    tracing::info!(operation_id = %operation_id, provider = %row.provider, attempts = row.attempts + 1, "member notification delivered");
                }
                SendOutcome::Failed {
                    state,
                    next_attempt_at,
                    error,
                } => {
                    if *state == NotificationState::Stuck {
                        round.stuck += 1;
                        self.outcomes.stuck.increment();
                    } else {
                        round.retried += 1;
                        self.outcomes.retried.increment();
                    }
                    tracing::warn!(
                        operation_id = %operation_id,
                        provider = %row.provider,
                        state = state.as_str(),
                        next_attempt_at = next_attempt_at.0,
                        %error,
                        "member notification not acknowledged"
                    );
                }
            }
            if !recorded {
                // Our lease ended and another notifier took the row: its outcome stands (the
                // provider acknowledges a repeat without recording twice).
                tracing::warn!(operation_id = %operation_id, "member notification lease lost during the attempt");
            }
        }
        Ok(round)
    }

    /// One attempt at sending `row` to its provider, at the URL its policy names now, if its
    /// policy allows it now: the body is personal information, and a provider the issuer no
    /// longer allows gets none (the row is stuck until it is allowed again).
    async fn send(&self, row: &NotificationRecord) -> SendOutcome {
        let attempts = row.attempts.saturating_add(1);
        let now = self.issuer.clock.now();
        let policy = match self.issuer.provider(&row.provider).await {
            Ok(policy) => policy,
            Err(error) => {
                return stuck_or_pending(false, error.to_string(), &row.operation_id, attempts, now)
            }
        };
        if policy.status != ProviderStatus::Allowed {
            return stuck_or_pending(
                true,
                NOT_ALLOWED.to_string(),
                &row.operation_id,
                attempts,
                now,
            );
        }
        let Some(url) = policy.url else {
            let error = format!(
                "provider {} has no url in this issuer's policy: set it (PUT /v1/providers/{})",
                row.provider, row.provider
            );
            return stuck_or_pending(true, error, &row.operation_id, attempts, now);
        };
        let body: MemberNotification = match serde_json::from_slice(&row.body) {
            Ok(body) => body,
            Err(e) => {
                let error = format!("the stored body is not a member notification: {e}");
                return stuck_or_pending(true, error, &row.operation_id, attempts, now);
            }
        };
        match self
            .issuer
            .link
            .notify_member(&row.provider, &url, &body, now)
            .await
        {
            Ok(()) => SendOutcome::Delivered {
                at: self.issuer.clock.now(),
            },
            Err(error) => failed(&error, &row.operation_id, attempts, now),
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_five_minutes_with_a_bounded_jitter() {
        let op = OperationId([7; 16]);
        for (attempts, base) in [(1, 2), (2, 4), (3, 8), (8, 256), (9, 300), (40, 300)] {
            let delay = backoff_s(&op, attempts);
            assert!(
                (base..=base + base / 4).contains(&delay),
                "{attempts}: {delay}"
            );
            assert_eq!(delay, backoff_s(&op, attempts), "seeded, not random");
        }
    }
}
