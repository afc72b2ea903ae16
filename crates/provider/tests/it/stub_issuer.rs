//! A stand-in for an issuer's server in the provider's own tests of STO-2 forwarding (the real
//! issuer is exercised against the provider in the e2e crate). It is a counterpart, not a
//! mock: it authenticates the provider's party request for real (`server_kit::PartyRequest`
//! with its own `PartyTrust` and nonce table), accepts only the provider that signed the SAR,
//! and signs a real SA over it with an issuer key from the test PKI. What it answers is chosen
//! per test ([`Answer`]). It also answers `GET /v1/issuer` (its IRC) and `GET /v1/crl`: a real
//! CRL of the RCs it was told to revoke ([`StubIssuer::revoke`]), signed with its key under its
//! IRC (or, to be refused, with another issuer's: [`StubIssuer::sign_crls_as`]), and
//! `GET /v1/applications/{aid}?version=` from the descriptors it was given
//! ([`StubIssuer::add_application`]; 404 `unknown_application` otherwise, or what
//! [`StubIssuer::applications_answer`] says).

use std::sync::{Arc, Mutex};

use axum::extract::{FromRef, Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use pki::UnixTime;
use protocol::{PartyRole, Sa, SaBasis, Sar, SignedObject};
use server_kit::testing::ServerForTests;
use server_kit::{ApiError, Clock, Db, ManualClock, MigrationSet, PartyRequest, PartyTrust};
use testkit::test_pki::{TestParty, TestPki};

/// The stub keeps nothing but server-kit's nonce table.
const NO_MIGRATIONS: MigrationSet = MigrationSet {
    component: "stub-issuer",
    sqlite: &[],
    postgres: &[],
};

/// What the stub answers a valid grant request with.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 201 with its own SA over the SAR.
    Grant,
    /// 409 `quota_exceeded`, as an issuer whose policy refuses the store.
    Refuse,
    /// 201 with an SA this other party signed (an issuer answering for another).
    SignAs(Box<TestParty>),
    /// 201 with an SA over another SAR than the one sent.
    OtherSar,
    /// 201 with something that is not an SA.
    Garbage,
}

/// How the stub answers `GET /v1/applications/{aid}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Catalog {
    /// The descriptor given for that AID and version, or 404 `unknown_application`.
    Serve,
    /// 503 `unavailable` for every application.
    Refuse,
    /// 200 with a body that is no descriptor.
    Garbage,
}

/// The CRL of RCs the stub publishes.
#[derive(Debug, Clone)]
struct Revocations {
    number: u64,
    serials: Vec<u64>,
    /// Who signs the CRL (`None`: the stub itself, under its IRC).
    signer: Option<TestParty>,
}

#[derive(Clone)]
struct Stub {
    me: TestParty,
    trust: PartyTrust,
    db: Db,
    clock: ManualClock,
    answer: Arc<Mutex<Answer>>,
    revocations: Arc<Mutex<Revocations>>,
    applications: Arc<Mutex<Vec<serde_json::Value>>>,
    catalog: Arc<Mutex<Catalog>>,
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

/// An issuer's server on port 0 answering `POST /v1/authorizations/grant`.
pub struct StubIssuer {
    pub url: String,
    answer: Arc<Mutex<Answer>>,
    revocations: Arc<Mutex<Revocations>>,
    applications: Arc<Mutex<Vec<serde_json::Value>>>,
    catalog: Arc<Mutex<Catalog>>,
    db: Db,
    running: ServerForTests,
}

impl StubIssuer {
    /// `me` (an issuer of `pki`) at the provider's `clock`, its nonces in a SQLite file in
    /// `dir`.
    pub async fn start(
        me: &TestParty,
        pki: &TestPki,
        clock: &ManualClock,
        dir: &std::path::Path,
    ) -> StubIssuer {
        let db_url = format!(
            "sqlite:{}",
            dir.join(format!("stub-{}.db", me.id)).display()
        );
        let db = Db::open(&db_url).await.unwrap();
        db.migrate(&NO_MIGRATIONS).await.unwrap();
        let answer = Arc::new(Mutex::new(Answer::Grant));
        let revocations = Arc::new(Mutex::new(Revocations {
            number: 1,
            serials: Vec::new(),
            signer: None,
        }));
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
            revocations: revocations.clone(),
            applications: Arc::new(Mutex::new(Vec::new())),
            catalog: Arc::new(Mutex::new(Catalog::Serve)),
        };
        let applications = stub.applications.clone();
        let catalog = stub.catalog.clone();
        let router = Router::new()
            .route("/v1/authorizations/grant", post(grant))
            .route("/v1/issuer", get(identity))
            .route("/v1/crl", get(crl))
            .route("/v1/applications/{aid}", get(application))
            .with_state(stub);
        let running = ServerForTests::serve(router).await;
        StubIssuer {
            url: format!("http://{}", running.addr),
            answer,
            revocations,
            applications,
            catalog,
            db,
            running,
        }
    }

    /// Serves an application descriptor: `code`'s size and SHA-256, owned by `provider`.
    pub fn add_application(
        &self,
        aid: &[u8],
        version: u32,
        code: &[u8],
        provider: &str,
        policy: u32,
    ) {
        self.applications.lock().unwrap().push(serde_json::json!({
            "aid": hex::encode(aid),
            "version": version,
            "size": code.len(),
            "digest": hex::encode(crypto::sha256(code).0),
            "provider": provider,
            "name": format!("Application {}", hex::encode(aid)),
            "description": "a test application",
            "policy": policy,
            "added_at": 1,
        }));
    }

    pub fn applications_answer(&self, catalog: Catalog) {
        *self.catalog.lock().unwrap() = catalog;
    }

    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Revokes the RC with `serial`: the next CRL (number + 1) lists it.
    pub fn revoke(&self, serial: u64) {
        let mut revocations = self.revocations.lock().unwrap();
        revocations.number += 1;
        revocations.serials.push(serial);
    }

    /// From now on the CRLs are signed by `other` (with its certificate's name and key
    /// identifier), under the next number: not the stub's own.
    pub fn sign_crls_as(&self, other: TestParty) {
        let mut revocations = self.revocations.lock().unwrap();
        revocations.number += 1;
        revocations.signer = Some(other);
    }

    pub async fn stop(self) {
        self.running.stop().await;
        self.db.close().await;
    }
}

async fn grant(
    State(stub): State<Stub>,
    party: PartyRequest,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let request = &party.request;
    if request.caller_role != PartyRole::Provider {
        return Err(ApiError::forbidden("only providers ask an issuer to grant"));
    }
    let body: serde_json::Value = serde_json::from_slice(&party.body)
        .map_err(|e| ApiError::bad_request("malformed_json", e.to_string()))?;
    let sar = body["sar"]
        .as_str()
        .and_then(|text| hex::decode(text).ok())
        .and_then(|der| SignedObject::from_der(&der).ok())
        .ok_or_else(|| ApiError::bad_request("invalid_sar", "sar is not a signed object"))?;
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
    let now = stub.clock.now();
    let not_after = UnixTime(now.0 + 600);
    let (signer, basis) = match stub.answer.lock().unwrap().clone() {
        Answer::Grant => (stub.me.clone(), sar),
        Answer::SignAs(other) => (*other, sar),
        Answer::OtherSar => {
            let mut other = claimed.clone();
            other.issued_at = UnixTime(other.issued_at.0 - 1);
            // Any signature will do: the basis is compared byte for byte.
            (
                stub.me.clone(),
                other.sign(&stub.me.key, sar.signer_chain().to_vec()),
            )
        }
        Answer::Garbage => {
            return Ok((
                StatusCode::CREATED,
                Json(serde_json::json!({"sa": "00", "not_after": not_after.0})),
            ))
        }
        Answer::Refuse => {
            return Err(ApiError::conflict(
                "quota_exceeded",
                "the provider's quota on this card is used up",
            ))
        }
    };
    let sa = Sa::new(
        SaBasis::Request(basis),
        PartyRole::Issuer,
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

async fn identity(State(stub): State<Stub>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "party_id": stub.me.id.as_str(),
        "irc": hex::encode(stub.me.cert.der()),
        "public_key": hex::encode(stub.me.key.verifying_key().to_sec1()),
    }))
}

async fn crl(State(stub): State<Stub>) -> Json<serde_json::Value> {
    let revocations = stub.revocations.lock().unwrap().clone();
    let signer = revocations.signer.unwrap_or_else(|| stub.me.clone());
    let now = stub.clock.now();
    let next_update = UnixTime(now.0 + 7 * 24 * 3600);
    let crl = pki::issue_crl(
        &signer.cert,
        &signer.key,
        revocations.number,
        now,
        next_update,
        &revocations.serials,
    )
    .unwrap();
    Json(serde_json::json!({
        "number": crl.number(),
        "this_update": now.0,
        "next_update": next_update.0,
        "crl": hex::encode(crl.der()),
        "pem": crl.to_pem(),
    }))
}

#[derive(serde::Deserialize)]
struct VersionParam {
    version: Option<u32>,
}

async fn application(
    State(stub): State<Stub>,
    Path(aid): Path<String>,
    Query(query): Query<VersionParam>,
) -> Result<Json<serde_json::Value>, ApiError> {
    match *stub.catalog.lock().unwrap() {
        Catalog::Serve => {}
        Catalog::Refuse => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the application DB is down for maintenance",
            )
            .readable())
        }
        Catalog::Garbage => return Ok(Json(serde_json::json!({"aid": 7}))),
    }
    stub.applications
        .lock()
        .unwrap()
        .iter()
        .find(|a| {
            a["aid"] == aid.as_str() && Some(a["version"].as_u64().unwrap() as u32) == query.version
        })
        .cloned()
        .map(Json)
        .ok_or_else(|| {
            ApiError::not_found(
                "unknown_application",
                format!("no application {aid} version {:?}", query.version),
            )
        })
}
