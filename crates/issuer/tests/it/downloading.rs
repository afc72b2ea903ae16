//! What the issue-4 tests share: a shop (provider-1 allowed at a stub provider's URL, one
//! application in the application DB), download requests as the provider would make them, a
//! real card's whole download through the issuer, and a "software card": a card registered
//! with a key the test holds, so it can sign download applications and receipts a real card
//! never would (another card's, another issuer's, expired, a wrong counter) to reach every
//! refusal.

use pki::{CardId, Certificate, UnixTime};
use protocol::{
    Challenge, DownloadApplication, DownloadRequest, ItemId, OperationId, RegistrationInfo,
    ServiceId, SignedObject,
};
use serde_json::json;
use testkit::world::{TestClient, World};

use crate::applications::{application, AID};
use crate::support::*;

/// The application's code: 1000 bytes.
pub fn code() -> Vec<u8> {
    (0..1000u32).map(|i| (i % 251) as u8).collect()
}

pub const SERVICE: &str = "transit-pass";

pub fn aid() -> ItemId {
    ItemId::new(AID).unwrap()
}

pub fn op(n: u8) -> OperationId {
    OperationId([n; 16])
}

/// provider-1 allowed (quota `quota`) at `url`, and the application (version 1, [`code`]).
pub async fn open_shop(server: &Server, w: &World, url: &str, quota: u32) {
    server
        .allow_at(w.pki.provider.id.as_str(), quota, Some(url))
        .await;
    server
        .client
        .add_application(server.token.expose(), &application(w, 1, &code()))
        .await
        .unwrap();
}

/// provider-1's download request for the application on `card_id`, operation `op`.
pub fn download_request(w: &World, card_id: CardId, op: OperationId) -> DownloadRequest {
    let code = code();
    DownloadRequest {
        operation_id: op,
        card_id,
        issuer: w.pki.issuer.id.clone(),
        provider: w.pki.provider.id.clone(),
        service_id: ServiceId::new(SERVICE).unwrap(),
        item_id: aid(),
        version: 1,
        size: code.len() as u32,
        data_digest: crypto::sha256(&code),
        terms_digest: crypto::sha256(b"membership terms v1"),
        not_after: UnixTime(NOW.0 + 1800),
    }
}

/// A registered real card (PIN verified) and its RC.
pub async fn registered_card(server: &Server, w: &World) -> (TestClient, CardId, Certificate) {
    let (mut c, card_id) = personalised_card(server, w).await;
    let (rc, _) = register(server, w, &mut c, &card_id).await;
    (c, card_id, rc)
}

/// A card registered at the issuer with a key the test holds (its record made by the issuer,
/// no card behind it).
pub struct SoftCard {
    pub card_id: CardId,
    pub key: crypto::SigningKey,
    pub rc: Certificate,
}

impl SoftCard {
    pub async fn new(server: &Server, w: &World, seed: u64) -> SoftCard {
        let r = server
            .operate(
                "POST",
                "/v1/cards",
                &json!({"pin": "2468", "capacity": 4096}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        let card_id = CardId::from_slice(&bytes_of(&r.json(), "card_id")).unwrap();
        let challenge = server.client.challenge(&card_id).await.unwrap();
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(seed);
        let key = crypto::SigningKey::generate(&mut rng);
        let info = RegistrationInfo {
            card_id,
            public_key: key.verifying_key(),
            user_info: w.user.clone(),
            challenge: challenge.challenge_value().unwrap(),
        }
        .sign(&key);
        let registered = server.client.register(&card_id, &info).await.unwrap();
        SoftCard {
            card_id,
            key,
            rc: registered.rc_certificate().unwrap(),
        }
    }

    /// The card's application for `request` at receipt counter `counter` with `free` bytes.
    pub fn sign(&self, request: &DownloadRequest, counter: u64, free: u32) -> SignedObject {
        DownloadApplication {
            request: request.clone(),
            counter,
            free,
        }
        .sign(&self.key)
    }

    /// Its receipt for having stored the item of `sdi` under `sa` at `counter`, the listing
    /// after it holding `items` (capacity 4096).
    pub fn receipt(
        &self,
        sdi: &protocol::Sdi,
        sa: &SignedObject,
        counter: u64,
        items: &[protocol::ListedItem],
    ) -> SignedObject {
        let used: u32 = items.iter().map(|i| i.size).sum();
        protocol::Receipt {
            card_id: self.card_id,
            counter,
            operation: protocol::Operation::Store,
            item_id: sdi.item_id.clone(),
            sdi_digest: sdi.digest(),
            authorization_digest: sa.digest(),
            result: protocol::ReceiptResult::Stored,
            listing_digest: protocol::listing_digest(items, 4096, 4096 - used).unwrap(),
        }
        .sign(&self.key)
    }
}

/// The item an SDI stores, as a listing shows it.
pub fn listed(sdi: &protocol::Sdi) -> protocol::ListedItem {
    protocol::ListedItem {
        item_id: sdi.item_id.clone(),
        version: sdi.version,
        size: sdi.size,
        data_digest: sdi.data_digest,
        owner: sdi.owner.clone(),
        policy: sdi.policy,
    }
}

/// A software card's download opened and authorized at `server` (challenge `[op's byte; 16]`):
/// the receipt the card would give for installing it (its first, counter 1).
pub async fn installed_soft(
    server: &Server,
    w: &World,
    card: &SoftCard,
    op: OperationId,
) -> SignedObject {
    let request = download_request(w, card.card_id, op);
    let opened = server
        .client
        .open_download(&card.sign(&request, 0, 4096), &card.rc)
        .await
        .unwrap();
    let sdi = opened.sdi_value().unwrap();
    let authorization = server
        .client
        .authorize_download(&op, &Challenge([op.0[0]; 16]))
        .await
        .unwrap();
    card.receipt(
        &sdi,
        &authorization.sa_object().unwrap(),
        1,
        &[listed(&sdi)],
    )
}

/// A second application of provider-1 (another AID), 600 bytes.
pub const AID_2: &[u8] = b"\xA0\x00\x00\x02\x47\x10\x02";

pub fn code_2() -> Vec<u8> {
    (0..600u32).map(|i| (i % 241) as u8 ^ 0x5A).collect()
}

/// Adds [`AID_2`] version 1 ([`code_2`]) to the application DB.
pub async fn add_second_application(server: &Server, w: &World) {
    let mut second = application(w, 1, &code_2());
    second.aid = hex::encode(AID_2);
    second.name = "Library card".into();
    server
        .client
        .add_application(server.token.expose(), &second)
        .await
        .unwrap();
}

/// provider-1's download request for [`AID_2`] on `card_id`, operation `op`.
pub fn download_request_2(w: &World, card_id: CardId, op: OperationId) -> DownloadRequest {
    let code = code_2();
    DownloadRequest {
        item_id: ItemId::new(AID_2).unwrap(),
        size: code.len() as u32,
        data_digest: crypto::sha256(&code),
        service_id: ServiceId::new("library").unwrap(),
        ..download_request(w, card_id, op)
    }
}

/// A software card's `request` opened (its application at `counter`, 4096 free) and
/// authorized at `server` with challenge `[op's byte; 16]`: the SDI and the provider's SA.
pub async fn opened_and_authorized(
    server: &Server,
    card: &SoftCard,
    request: &DownloadRequest,
    counter: u64,
) -> (protocol::Sdi, SignedObject) {
    let opened = server
        .client
        .open_download(&card.sign(request, counter, 4096), &card.rc)
        .await
        .unwrap();
    let op = request.operation_id;
    let authorization = server
        .client
        .authorize_download(&op, &Challenge([op.0[0]; 16]))
        .await
        .unwrap();
    (
        opened.sdi_value().unwrap(),
        authorization.sa_object().unwrap(),
    )
}
