//! APP-3 / REC-2 on the card (docs/app-download.md §2, §5): SIGN DOWNLOAD APPLICATION writes
//! nothing; the ring of kept receipts holds the last 8 across power cycles; GET RECEIPT after
//! a LOAD torn at any write answers the old state (6A88) or the new receipt, consistently with
//! the signed listing.

use apdu::{Command, Status};
use card::state::KEPT_RECEIPTS;
use card::wire::INS_LOAD;
use card::Card;
use crypto::{Digest, InsecureSeededRng};
use pki::UnixTime;
use protocol::{
    verify_listing, verify_receipt, Challenge, DownloadRequest, ItemId, Nonce, Operation,
    OperationId, ServiceId,
};
use terminal::{CardClient, InProcessCard};
use testkit::fault::{FaultNvm, FaultPlan, WeakByte};
use testkit::test_pki::TestPki;
use testkit::world::{Path, World, PIN};

type Client = CardClient<InProcessCard<FaultNvm>>;

const SEED: u64 = 0xD0_4D;
const RNG_SEED: u64 = 0xD0_4E;
const DATA: &[u8] = b"fitness club membership applet";

fn client(nvm: FaultNvm) -> Client {
    let card = Card::boot(nvm).expect("boot");
    let rng = InsecureSeededRng::insecure_seeded_for_tests(RNG_SEED);
    let mut c = CardClient::new(InProcessCard::new(card, Box::new(rng)));
    c.select_card_manager().expect("select");
    c
}

/// NVM bytes of this world's registered card.
fn registered(w: &World) -> (Vec<u8>, pki::Certificate) {
    let (c, rc) = w.registered();
    (c.into_channel().into_card().into_nvm().into_bytes(), rc)
}

fn nvm_of(c: Client) -> FaultNvm {
    c.into_channel().into_card().into_nvm()
}

fn download_request(w: &World) -> DownloadRequest {
    DownloadRequest {
        operation_id: OperationId([0x0D; 16]),
        card_id: w.card_id,
        issuer: w.pki.issuer.id.clone(),
        provider: w.pki.provider.id.clone(),
        service_id: ServiceId::new("fitness").unwrap(),
        item_id: ItemId::new(&[0xA0, 0x00, 0x00, 0x07, 0x01]).unwrap(),
        version: 1,
        size: DATA.len() as u32,
        data_digest: crypto::sha256(DATA),
        terms_digest: Digest([0x7E; 32]),
        not_after: UnixTime(TestPki::NOW.0 + 1800),
    }
}

#[test]
fn sign_download_application_writes_nothing() {
    let w = World::new(SEED);
    let (pre, _) = registered(&w);
    let nvm = FaultNvm::from_bytes(&pre);
    let handle = nvm.handle();
    let mut c = client(nvm);
    c.verify_pin(PIN).unwrap();
    handle.arm(FaultPlan::None);
    let image = c.channel().card.image().to_vec();
    let first = c.sign_download_application(&download_request(&w)).unwrap();
    let mut expired = download_request(&w);
    expired.not_after = UnixTime(0);
    assert!(c.sign_download_application(&expired).is_err());
    let second = c.sign_download_application(&download_request(&w)).unwrap();
    assert_eq!(first.to_der(), second.to_der());
    assert_eq!(
        handle.write_count(),
        0,
        "SIGN DOWNLOAD APPLICATION wrote to NVM"
    );
    assert_eq!(c.channel().card.image(), image.as_slice());
}

/// One store of a distinct item on `c`: returns the SA's digest and the receipt's DER.
fn store(w: &World, c: &mut Client, rc: &pki::Certificate, n: u32) -> (Digest, Vec<u8>) {
    let item = format!("item-{n}");
    let data = format!("data of item {n}");
    let sdi = w.sdi(Operation::Store, item.as_bytes(), 1, data.as_bytes());
    let ch = Challenge(c.get_challenge().unwrap());
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, rc);
    let receipt = c.store(&sa, None, data.as_bytes()).unwrap();
    (sa.digest(), receipt.to_der())
}

#[test]
fn the_ring_keeps_the_last_8_receipts_across_power_cycles() {
    let w = World::new(SEED);
    let (pre, rc) = registered(&w);
    let mut c = client(FaultNvm::from_bytes(&pre));
    c.verify_pin(PIN).unwrap();
    let mut done = Vec::new();
    for n in 1..=KEPT_RECEIPTS as u32 + 1 {
        done.push(store(&w, &mut c, &rc, n));
        // Every receipt so far (within the last 8) is there after each operation.
        let (digest, der) = done.last().unwrap();
        assert_eq!(&c.get_receipt(digest).unwrap().to_der(), der);
        // The first receipt stays until the ninth operation pushes it out.
        let first = c.get_receipt(&done[0].0);
        if n as usize <= KEPT_RECEIPTS {
            assert_eq!(first.unwrap().to_der(), done[0].1);
        } else {
            assert_eq!(first.unwrap_err().status(), Some(Status(0x6A88)));
        }
    }
    // A delete also lands in the ring (and pushes out the second store's receipt).
    let del = w.sdi(Operation::Delete, b"item-9", 1, b"data of item 9");
    let ch = Challenge(c.get_challenge().unwrap());
    let del_sa = w.sa(Path::ViaProvider, &del, ch, &rc);
    let del_receipt = c.delete(&del_sa).unwrap();
    done.push((del_sa.digest(), del_receipt.to_der()));

    // Power cycle: the ring is persistent.
    let mut c = client(nvm_of(c).reboot(FaultPlan::None));
    assert_eq!(c.status().unwrap().receipt_counter, 10);
    let (gone, kept) = done.split_at(done.len() - KEPT_RECEIPTS);
    assert_eq!(gone.len(), 2);
    for (digest, _) in gone {
        let e = c.get_receipt(digest).unwrap_err();
        assert_eq!(e.status(), Some(Status(0x6A88)), "{e}");
    }
    for (i, (digest, der)) in kept.iter().enumerate() {
        let again = c.get_receipt(digest).unwrap();
        assert_eq!(&again.to_der(), der, "kept receipt {i}");
        let body = verify_receipt(&again, &rc).unwrap();
        assert_eq!(body.counter, 3 + i as u64);
    }
}

/// What one torn LOAD left behind, read after the reboot.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// GET RECEIPT 6A88, and the listing holds the card as before the LOAD.
    Old,
    /// GET RECEIPT answers the LOAD's receipt, and the listing holds the card after it.
    New,
}

#[test]
fn get_receipt_after_a_torn_last_load_agrees_with_the_listing() {
    let w = World::new(SEED);
    let (pre, rc) = registered(&w);
    let request = download_request(&w);
    let sdi = w.sdi_with(
        Operation::Store,
        request.item_id.as_bytes(),
        1,
        DATA,
        &w.pki.provider.id,
        protocol::Policy::NONE,
    );
    // The seeded card hands out the same first challenge after every boot.
    let ch = {
        let mut c = client(FaultNvm::from_bytes(&pre));
        c.verify_pin(PIN).unwrap();
        Challenge(c.get_challenge().unwrap())
    };
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    let last_load = Command::new(0x80, INS_LOAD, 0x80, 0x00, DATA.to_vec()).with_le(256);

    // Runs INSTALL, arms `plan`, sends the last LOAD; returns the device after power-off.
    let run = |plan: FaultPlan| -> (FaultNvm, Result<Vec<u8>, terminal::ClientError>) {
        let nvm = FaultNvm::from_bytes(&pre);
        let handle = nvm.handle();
        let mut c = client(nvm);
        c.verify_pin(PIN).unwrap();
        assert_eq!(Challenge(c.get_challenge().unwrap()), ch);
        c.install_for_load(&sa, None).unwrap();
        handle.arm(plan);
        let answer = c.send("LOAD", last_load.clone());
        drop(c);
        (handle, answer)
    };

    let (dry, answer) = run(FaultPlan::None);
    let receipt_der = answer.expect("the LOAD stores and answers the receipt");
    let receipt = verify_receipt(
        &protocol::SignedObject::from_der(&receipt_der).unwrap(),
        &rc,
    )
    .unwrap();
    let writes = dry.writes();
    assert!(!writes.is_empty());

    let observe = |nvm: FaultNvm| -> Outcome {
        let mut c = client(nvm.reboot(FaultPlan::None));
        let nonce = Nonce::new(b"resume").unwrap();
        let listing = verify_listing(&c.listing(nonce.as_bytes()).unwrap(), &rc, &nonce).unwrap();
        let holds = listing
            .contents
            .items()
            .iter()
            .any(|i| i.item_id == request.item_id);
        match c.get_receipt(&sa.digest()) {
            Ok(again) => {
                assert_eq!(
                    again.to_der(),
                    receipt_der,
                    "the kept receipt, byte for byte"
                );
                assert!(holds, "a receipt is kept but the listing lacks the item");
                assert_eq!(listing.counter, receipt.counter);
                assert_eq!(listing.contents.digest(), receipt.listing_digest);
                Outcome::New
            }
            Err(e) => {
                assert_eq!(e.status(), Some(Status(0x6A88)), "{e}");
                assert!(!holds, "the listing holds the item but no receipt is kept");
                assert_eq!(listing.counter, 0);
                Outcome::Old
            }
        }
    };

    let mut seen = std::collections::BTreeMap::new();
    let mut cases = 0;
    for (index, write) in writes.iter().enumerate() {
        let mut plans = vec![FaultPlan::CrashAfterWrite { index }];
        for bytes_written in [0, write.len / 2, write.len.saturating_sub(1)] {
            for weak in WeakByte::BOTH {
                plans.push(FaultPlan::TearInWrite {
                    index,
                    bytes_written,
                    weak,
                });
            }
        }
        for plan in plans {
            let (nvm, _) = run(plan);
            let outcome = observe(nvm);
            *seen.entry(format!("{outcome:?}")).or_insert(0usize) += 1;
            cases += 1;
        }
    }
    println!("{cases} torn LOADs: {seen:?}");
    assert!(
        seen.contains_key("Old") && seen.contains_key("New"),
        "{seen:?}"
    );
}
