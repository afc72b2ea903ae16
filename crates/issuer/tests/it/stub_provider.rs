//! A stand-in for a provider's server in the issuer's own tests of STO-1 forwarding and of
//! issue 4's download grant and member notifications (the real provider is exercised against
//! the issuer in the e2e crate). It is a counterpart, not a mock: it authenticates the issuer's
//! party request for real (`server_kit::PartyRequest` with its own `PartyTrust` and nonce
//! table), accepts only the issuer that signed the SAR, checks the card's download application
//! under the RC sent, and signs a real SA over the SAR with a provider key from the test PKI.
//! Member notifications are counted and kept, acknowledged 201 the first time per operation
//! and 200 after. What it answers is chosen per test ([`Answer`], [`MemberAnswer`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use pki::{Certificate, UnixTime};
use protocol::{ExpectedDownload, PartyRole, Sa, SaBasis, Sar, SignedObject};
use server_kit::testing::ServerForTests;
use server_kit::{ApiError, Clock, Db, ManualClock, MigrationSet, PartyRequest, PartyTrust};
use testkit::test_pki::{TestParty, TestPki};

/// The stub keeps nothing but server-kit's nonce table.
const NO_MIGRATIONS: MigrationSet = MigrationSet {
    component: "stub-provider",
    sqlite: &[],
    postgres: &[],
};

/// What the stub answers a valid grant request with.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 201 with its own SA over the SAR.
    Grant,
    /// 422 `sdi_mismatch`, as a provider whose catalog does not match the SDI.
    Refuse,
    /// 201 with an SA this other party signed (a provider answering for another).
    SignAs(Box<TestParty>),
}

/// What the stub answers a member notification with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberAnswer {
    /// 201 the first time per operation, 200 after (the acknowledgment).
    Ack,
    /// 503 `unavailable`.
    Unavailable,
    /// 422 `operation_mismatch`.
    Refuse,
}

/// What the stub saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Download grant requests answered, per operation ID (hex).
    pub grants: BTreeMap<String, u32>,
    /// Member notification bodies received (whatever was answered), in order.
    pub notifications: Vec<serde_json::Value>,
}

#[derive(Clone)]
struct Stub {
    me: TestParty,
    trust: PartyTrust,
    db: Db,
    clock: ManualClock,
    answer: Arc<Mutex<Answer>>,
    member_answer: Arc<Mutex<MemberAnswer>>,
    /// Answers for one operation's notifications (hex ID), over `member_answer`.
    member_answers: Arc<Mutex<BTreeMap<String, MemberAnswer>>>,
    seen: Arc<Mutex<Seen>>,
}

impl FromRef<Stub> for Db {
    fn from_ref(stub: &Stub) -> Db {
        stub.db.clone()
    }
}

impl FromRef<Stub> for PartyTrust {
    fn from_ref(stub: &Stub) -> PartyTrust {
        stub.trust.clone()
    }
}

/// A provider's server on port 0 answering `POST /v1/authorizations/grant`.
pub struct StubProvider {
    pub url: String,
    answer: Arc<Mutex<Answer>>,
    member_answer: Arc<Mutex<MemberAnswer>>,
    member_answers: Arc<Mutex<BTreeMap<String, MemberAnswer>>>,
    seen: Arc<Mutex<Seen>>,
    db: Db,
    running: ServerForTests,
}

impl StubProvider {
    /// `me` (a provider of `pki`) at the issuer's `clock`, its nonces in a SQLite file in
    /// `dir`.
    pub async fn start(
        me: &TestParty,
        pki: &TestPki,
        clock: &ManualClock,
        dir: &std::path::Path,
    ) -> StubProvider {
        let db_url = format!(
            "sqlite:{}",
            dir.join(format!("stub-{}.db", me.id)).display()
        );
        let db = Db::open(&db_url).await.unwrap();
        db.migrate(&NO_MIGRATIONS).await.unwrap();
        let answer = Arc::new(Mutex::new(Answer::Grant));
        let member_answer = Arc::new(Mutex::new(MemberAnswer::Ack));
        let member_answers = Arc::new(Mutex::new(BTreeMap::new()));
        let seen = Arc::new(Mutex::new(Seen::default()));
        let stub = Stub {
            me: me.clone(),
            trust: PartyTrust::new(
                me.id.clone(),
                pki.issuer_registrar.cert.clone(),
                pki.data_registrar.cert.clone(),
                Arc::new(clock.clone()),
            ),
            db: db.clone(),
            clock: clock.clone(),
            answer: answer.clone(),
            member_answer: member_answer.clone(),
            member_answers: member_answers.clone(),
            seen: seen.clone(),
        };
        let router = Router::new()
            .route("/v1/authorizations/grant", post(grant))
            .route("/v1/downloads/{operation_id}/grant", post(download_grant))
            .route("/v1/members", post(member))
            .with_state(stub);
        let running = ServerForTests::serve(router).await;
        StubProvider {
            url: format!("http://{}", running.addr),
            answer,
            member_answer,
            member_answers,
            seen,
            db,
            running,
        }
    }

    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    pub fn answer_members(&self, answer: MemberAnswer) {
        *self.member_answer.lock().unwrap() = answer;
    }

    /// Answers the notifications of operation `operation_id` (hex) with `answer`, whatever
    /// [`StubProvider::answer_members`] says for the others.
    pub fn answer_members_for(&self, operation_id: &str, answer: MemberAnswer) {
        self.member_answers
            .lock()
            .unwrap()
            .insert(operation_id.to_string(), answer);
    }

    /// How many download grants were asked for operation `operation_id` (hex).
    pub fn grants(&self, operation_id: &str) -> u32 {
        self.seen
            .lock()
            .unwrap()
            .grants
            .get(operation_id)
            .copied()
            .unwrap_or(0)
    }

    /// The member notifications received so far.
    pub fn notifications(&self) -> Vec<serde_json::Value> {
        self.seen.lock().unwrap().notifications.clone()
    }

    pub async fn stop(self) {
        self.running.stop().await;
        self.db.close().await;
    }
}

fn object_in(
    body: &serde_json::Value,
    field: &str,
    code: &'static str,
) -> Result<SignedObject, ApiError> {
    body[field]
        .as_str()
        .and_then(|text| hex::decode(text).ok())
        .and_then(|der| SignedObject::from_der(&der).ok())
        .ok_or_else(|| ApiError::bad_request(code, format!("{field} is not a signed object")))
}

fn issuer_body(party: &PartyRequest) -> Result<serde_json::Value, ApiError> {
    if party.request.caller_role != PartyRole::Issuer {
        return Err(ApiError::forbidden("only issuers call this"));
    }
    serde_json::from_slice(&party.body)
        .map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))
}

async fn grant(
    State(stub): State<Stub>,
    party: PartyRequest,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = issuer_body(&party)?;
    let sar = object_in(&body, "sar", "invalid_sar")?;
    sign_sa(&stub, &party, sar)
}

/// Issue 4's download grant: the card's application must verify under the RC sent and be
/// addressed to the calling issuer; then as the STO-1 grant.
async fn download_grant(
    State(stub): State<Stub>,
    Path(operation_id): Path<String>,
    party: PartyRequest,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = issuer_body(&party)?;
    let sar = object_in(&body, "sar", "invalid_sar")?;
    let application = object_in(
        &body,
        "download_application",
        "invalid_download_application",
    )?;
    let rc = body["rc"]
        .as_str()
        .and_then(|text| hex::decode(text).ok())
        .and_then(|der| Certificate::from_der(&der).ok())
        .ok_or_else(|| ApiError::bad_request("invalid_rc", "rc is not a certificate"))?;
    let expected = ExpectedDownload {
        issuer: party.request.caller.clone(),
        now: stub.clock.now(),
    };
    let verified =
        protocol::verify_download_application(&application, &rc, &expected).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_download_application",
                e.to_string(),
            )
        })?;
    if verified.request.operation_id.to_hex() != operation_id {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "operation_mismatch",
            "the application is for another operation",
        ));
    }
    *stub
        .seen
        .lock()
        .unwrap()
        .grants
        .entry(operation_id)
        .or_default() += 1;
    sign_sa(&stub, &party, sar)
}

/// S15: counted and kept; answered as [`MemberAnswer`] says.
async fn member(
    State(stub): State<Stub>,
    party: PartyRequest,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let body = issuer_body(&party)?;
    let operation_id = body["operation_id"].clone();
    let repeat = {
        let mut seen = stub.seen.lock().unwrap();
        let acknowledged_before = seen
            .notifications
            .iter()
            .any(|n| n["operation_id"] == operation_id);
        seen.notifications.push(body);
        acknowledged_before
    };
    let answer = operation_id
        .as_str()
        .and_then(|op| stub.member_answers.lock().unwrap().get(op).copied())
        .unwrap_or_else(|| *stub.member_answer.lock().unwrap());
    match answer {
        MemberAnswer::Ack => {}
        MemberAnswer::Unavailable => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "down for maintenance",
            )
            .readable())
        }
        MemberAnswer::Refuse => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "operation_mismatch",
                "no such operation here",
            ))
        }
    }
    let status = if repeat {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((
        status,
        Json(serde_json::json!({
            "operation_id": operation_id,
            "member_since": stub.clock.now().0,
            "newly_recorded": !repeat,
        })),
    ))
}

/// The stub's SA over the issuer's `sar`, as [`Answer`] says.
fn sign_sa(
    stub: &Stub,
    party: &PartyRequest,
    sar: SignedObject,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let request = &party.request;
    let claimed: Sar = sar
        .body_unverified()
        .map_err(|e| ApiError::bad_request("invalid_sar", e.to_string()))?;
    if claimed.requester != request.caller {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "caller_not_requester",
            format!("{} did not sign this SAR", request.caller),
        ));
    }
    let signer = match stub.answer.lock().unwrap().clone() {
        Answer::Grant => stub.me.clone(),
        Answer::SignAs(other) => *other,
        Answer::Refuse => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "sdi_mismatch",
                "the SDI does not match the catalog",
            ))
        }
    };
    let now = stub.clock.now();
    let not_after = UnixTime(now.0 + 600);
    let sa = Sa::new(
        SaBasis::Request(sar),
        PartyRole::Provider,
        signer.id.clone(),
        claimed.sdi,
        claimed.challenge,
        now,
        not_after,
    )
    .sign(&signer.key, vec![signer.cert.der().to_vec()]);
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"sa": hex::encode(sa.to_der()), "not_after": not_after.0})),
    ))
}
