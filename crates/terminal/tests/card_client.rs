//! `CardClient::sign_download_application` and `CardClient::get_receipt` (APP-3, REC-2)
//! against an in-process card: the answers verify as the issuer and the provider verify them,
//! every refusal arrives as `ClientError::Refused` with its status word and meaning, and an
//! answer that is not a signed object is `ClientError::Malformed`.

use apdu::Status;
use crypto::Digest;
use pki::{CardId, PartyId, UnixTime};
use protocol::{
    verify_download_application, verify_receipt, Challenge, DownloadApplication, DownloadRequest,
    ExpectedDownload, ItemId, Operation, OperationId, Purpose, ServiceId,
};
use terminal::{meaning, CardChannel, CardClient, ChannelError, ClientError};
use testkit::test_pki::TestPki;
use testkit::world::{Path, World, CAPACITY, PIN};

const SEED: u64 = 0xC11E;
const DATA: &[u8] = b"loyalty applet, version 1";

fn request(w: &World) -> DownloadRequest {
    DownloadRequest {
        operation_id: OperationId([0x0D; 16]),
        card_id: w.card_id,
        issuer: w.pki.issuer.id.clone(),
        provider: w.pki.provider.id.clone(),
        service_id: ServiceId::new("loyalty").unwrap(),
        item_id: ItemId::new(&[0xA0, 0x00, 0x00, 0x07, 0x02]).unwrap(),
        version: 1,
        size: DATA.len() as u32,
        data_digest: crypto::sha256(DATA),
        terms_digest: Digest([0x7E; 32]),
        not_after: UnixTime(TestPki::NOW.0 + 1800),
    }
}

fn expected(w: &World) -> ExpectedDownload {
    ExpectedDownload {
        issuer: w.pki.issuer.id.clone(),
        now: TestPki::NOW,
    }
}

/// `result` is the card's refusal `sw` of `command`, with the status word's meaning.
fn assert_refused<T: std::fmt::Debug>(result: Result<T, ClientError>, command: &str, sw: u16) {
    match result {
        Err(ClientError::Refused {
            command: c,
            status,
            meaning: m,
        }) => {
            assert_eq!((c, status), (command, Status(sw)));
            assert_eq!(m, meaning(Status(sw)));
            assert_ne!(m, "unknown status", "{sw:04X} has a meaning");
        }
        other => panic!("expected {command} refused with {sw:04X}, got {other:?}"),
    }
}

#[test]
fn sign_download_application_answers_a_verifiable_application() {
    let w = World::new(SEED);
    let (mut c, rc) = w.registered();
    let signed = c.sign_download_application(&request(&w)).unwrap();
    assert_eq!(signed.purpose(), Purpose::DownloadApplication);
    assert_eq!(
        verify_download_application(&signed, &rc, &expected(&w)),
        Ok(DownloadApplication {
            request: request(&w),
            counter: 0,
            free: CAPACITY,
        })
    );
    // Another verifier (the provider on the grant) gets the same answer from the same bytes.
    assert_eq!(
        c.sign_download_application(&request(&w)).unwrap().to_der(),
        signed.to_der()
    );
}

#[test]
fn sign_download_application_refusals() {
    let w = World::new(SEED);
    const SIGN: &str = "SIGN DOWNLOAD APPLICATION";

    // Not registered (personalised, PIN verified).
    let mut personalised = w.personalised();
    personalised.verify_pin(PIN).unwrap();
    assert_refused(
        personalised.sign_download_application(&request(&w)),
        SIGN,
        0x6985,
    );

    // PIN not verified: a rebooted registered card.
    let (c, _) = w.registered();
    let mut c = w.reboot(c);
    assert_refused(c.sign_download_application(&request(&w)), SIGN, 0x6982);
    c.verify_pin(PIN).unwrap();

    let mut other_card = request(&w);
    other_card.card_id = CardId([0x22; 16]);
    assert_refused(c.sign_download_application(&other_card), SIGN, 0x6A80);
    let mut other_issuer = request(&w);
    other_issuer.issuer = PartyId::new("issuer-2").unwrap();
    assert_refused(c.sign_download_application(&other_issuer), SIGN, 0x6A80);
    let mut expired = request(&w);
    expired.not_after = UnixTime(0);
    assert_refused(c.sign_download_application(&expired), SIGN, 0x6984);
    let mut too_big = request(&w);
    too_big.size = CAPACITY + 1;
    assert_refused(c.sign_download_application(&too_big), SIGN, 0x6A84);
    // Exactly the free bytes fit.
    let mut exact = request(&w);
    exact.size = CAPACITY;
    assert!(c.sign_download_application(&exact).is_ok());
}

#[test]
fn get_receipt_answers_the_kept_receipt() {
    let w = World::new(SEED);
    let (mut c, rc) = w.registered();
    assert_refused(c.get_receipt(&Digest([1; 32])), "GET RECEIPT", 0x6A88);
    let sdi = w.sdi(Operation::Store, b"ticket-1", 1, DATA);
    let ch = Challenge(c.get_challenge().unwrap());
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    let receipt = c.store(&sa, None, DATA).unwrap();
    // After a power cycle, without the PIN.
    let mut c = w.reboot(c);
    let again = c.get_receipt(&sa.digest()).unwrap();
    assert_eq!(again.to_der(), receipt.to_der());
    let body = verify_receipt(&again, &rc).unwrap();
    assert_eq!(body.authorization_digest, sa.digest());
    assert_refused(c.get_receipt(&Digest([1; 32])), "GET RECEIPT", 0x6A88);

    let mut personalised = w.personalised();
    assert_refused(
        personalised.get_receipt(&sa.digest()),
        "GET RECEIPT",
        0x6985,
    );
}

/// A "card" that answers every command with the same bytes.
struct Answers(Vec<u8>);

impl CardChannel for Answers {
    fn transmit(&mut self, _command: &[u8]) -> Result<Vec<u8>, ChannelError> {
        Ok(self.0.clone())
    }
}

#[test]
fn an_answer_that_is_not_a_signed_object_is_malformed() {
    let w = World::new(SEED);
    let mut c = CardClient::new(Answers(vec![0x30, 0x03, 0x02, 0x01, 0x01, 0x90, 0x00]));
    assert!(matches!(
        c.sign_download_application(&request(&w)),
        Err(ClientError::Malformed {
            command: "SIGN DOWNLOAD APPLICATION",
            ..
        })
    ));
    assert!(matches!(
        c.get_receipt(&Digest([1; 32])),
        Err(ClientError::Malformed {
            command: "GET RECEIPT",
            ..
        })
    ));
}
