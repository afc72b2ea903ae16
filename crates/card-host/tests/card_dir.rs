//! A card directory end to end: created, manufactured, spoken to, powered down, opened again
//! with its key — and the refusals a user meets on the way (existing card, wrong key, no card,
//! a card already in use).

use card_host::{CardDir, CardSlot, HostError, HostedCard, PowerEvent, SealingKey};

const SELECT_ISD: &str = "00A4040008A000000151000000";

fn key(seed: u64) -> SealingKey {
    SealingKey::generate(&mut crypto::InsecureSeededRng::insecure_seeded_for_tests(
        seed,
    ))
}

fn sw(response: &[u8]) -> u16 {
    u16::from_be_bytes([response[response.len() - 2], response[response.len() - 1]])
}

#[test]
fn a_card_lives_on_across_power_cycles_and_reopening() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("card1");
    let key = key(1);
    let mut card = HostedCard::create(&dir, &key, card::DEFAULT_IMAGE_CAPACITY).unwrap();
    assert!(CardDir::nvm_path(&dir).is_file());
    let atr = card.atr();
    assert_eq!(atr.first(), Some(&0x3B), "direct convention TS: {atr:02X?}");
    card.power(PowerEvent::On);
    assert_eq!(
        sw(&card.transmit(&hex::decode(SELECT_ISD).unwrap())),
        0x9000
    );
    card.power(PowerEvent::Reset);
    card.power(PowerEvent::Off);
    drop(card);

    let mut card = HostedCard::open(&dir, &key).unwrap();
    assert_eq!(
        sw(&card.transmit(&hex::decode(SELECT_ISD).unwrap())),
        0x9000
    );
}

#[test]
fn the_refusals_name_the_card_and_what_to_do() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("card1");
    let card = HostedCard::create(&dir, &key(1), card::DEFAULT_IMAGE_CAPACITY).unwrap();

    let err = HostedCard::open(&dir, &key(1)).err().unwrap();
    assert!(matches!(err, HostError::CardInUse { .. }), "{err}");
    drop(card);

    let err = HostedCard::create(&dir, &key(1), card::DEFAULT_IMAGE_CAPACITY)
        .err()
        .unwrap();
    assert!(matches!(err, HostError::CardExists { .. }), "{err}");

    let err = HostedCard::open(&dir, &key(2)).err().unwrap();
    assert!(matches!(err, HostError::WrongSealingKey { .. }), "{err}");
    assert!(err.to_string().contains("card1/card.nvm"), "{err}");

    let err = HostedCard::open(&tmp.path().join("nothing"), &key(1))
        .err()
        .unwrap();
    assert!(matches!(err, HostError::NoCard { .. }), "{err}");
    assert!(err.to_string().contains("cardwright card new"), "{err}");
}

#[test]
fn the_suggested_key_file_sits_beside_the_card_directory() {
    assert_eq!(
        CardDir::suggested_key_file(std::path::Path::new("/var/cards/alice")),
        std::path::PathBuf::from("/var/cards/alice.key")
    );
    assert_eq!(
        CardDir::suggested_key_file(std::path::Path::new("cards/bob/")),
        std::path::PathBuf::from("cards/bob.key")
    );
}
