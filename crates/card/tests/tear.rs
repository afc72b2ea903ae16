//! Exhaustive tear test of every writing command of `docs/card-os.md` (CARD-2; design
//! `transfer-protocol.md` §5.2 T2): for each command, a power loss after every NVM write and a
//! tear inside every write at every byte boundary (the torn byte weak, read both ways), each
//! followed by a second fault at every write and byte boundary of the recovery. After every case
//! the card boots — twice, and the two boots must agree — into exactly the state before or after
//! the command. The test prints the case count of each command and the total.
//!
//! The card is driven by raw APDUs. Setup that a command needs (the holder's PIN, a challenge,
//! an INSTALL before the LOAD) runs before the fault plan is armed and must not change the
//! state image, so the fault lands only on the command under test.

use std::sync::atomic::{AtomicU64, Ordering};

use apdu::{tlv, Command};
use card::wire::*;
use card::Card;
use crypto::InsecureSeededRng;
use protocol::{Challenge, IssuerAction, Operation};
use terminal::{CardClient, InProcessCard};
use testkit::fault::{FaultNvm, FaultPlan};
use testkit::tear::{exhaust, DoubleFaults, TearOptions, TearReport};
use testkit::world::{Path, World, PIN};

type Client = CardClient<InProcessCard<FaultNvm>>;
/// What a boot observes: the state image's length and digest (readable in failure reports).
type Observation = Result<(usize, crypto::Digest), String>;

fn observed(image: &[u8]) -> (usize, crypto::Digest) {
    (image.len(), crypto::sha256(image))
}

const RNG_SEED: u64 = 0x7EA2;
const DATA: &[u8] = b"ticket #42: row 7";

static TOTAL_CASES: AtomicU64 = AtomicU64::new(0);

fn client(nvm: FaultNvm) -> Option<Client> {
    let card = Card::boot(nvm).ok()?;
    let rng = InsecureSeededRng::insecure_seeded_for_tests(RNG_SEED);
    let mut c = CardClient::new(InProcessCard::new(card, Box::new(rng)));
    c.select_card_manager().ok()?;
    Some(c)
}

fn image_of(nvm_bytes: &[u8]) -> Vec<u8> {
    Card::boot(FaultNvm::from_bytes(nvm_bytes))
        .expect("boot")
        .image()
        .to_vec()
}

fn nvm_bytes(c: testkit::world::TestClient) -> Vec<u8> {
    c.into_channel().into_card().into_nvm().into_bytes()
}

/// The challenge a card booted from `pre` hands out first (the RNG is seeded per boot).
fn first_challenge(pre: &[u8], verify_pin: bool) -> Challenge {
    let mut c = client(FaultNvm::from_bytes(pre)).expect("boot");
    if verify_pin {
        c.verify_pin(PIN).expect("verify");
    }
    Challenge(c.get_challenge().expect("challenge"))
}

/// One writing command under test.
struct TearCase<'a> {
    name: &'static str,
    /// NVM bytes before the setup and the command.
    pre: Vec<u8>,
    /// Brings the booted card to where the command runs; must not change the state image.
    setup: &'a dyn Fn(&mut Client),
    /// The command APDUs under test (their writes are the ones faulted).
    commands: Vec<Command>,
    /// Committed intermediate images of a multi-commit command, each the image of an atomic
    /// step (counted as the pre-state).
    intermediate: Vec<Vec<u8>>,
}

fn tear(case: TearCase<'_>) -> TearReport {
    let pre_image = image_of(&case.pre);
    // A dry run: the setup leaves the image alone and the command succeeds and writes.
    let dry = FaultNvm::from_bytes(&case.pre);
    let dry_handle = dry.handle();
    let mut c = client(dry).expect("boot");
    (case.setup)(&mut c);
    dry_handle.arm(FaultPlan::None);
    assert_eq!(
        c.channel().card.image(),
        pre_image,
        "{}: setup changed the state image",
        case.name
    );
    for cmd in &case.commands {
        // A wrong PIN is refused and still writes; everything else must succeed.
        match c.send(case.name, cmd.clone()) {
            Ok(_) => {}
            Err(e) if e.status().and_then(|s| s.tries_left()).is_some() => {}
            Err(e) => panic!("{}: dry run refused: {e}", case.name),
        }
    }
    let post_image = c.channel().card.image().to_vec();
    assert_ne!(
        pre_image, post_image,
        "{}: the command wrote nothing",
        case.name
    );
    let opts = budget(dry_handle.writes().iter().map(|w| w.len).sum());

    let run = |nvm: FaultNvm| {
        let plan = nvm.plan();
        let handle = nvm.handle();
        handle.arm(FaultPlan::None);
        let Some(mut c) = client(nvm) else { return };
        (case.setup)(&mut c);
        handle.arm(plan);
        for cmd in &case.commands {
            // Errors are the point: after the fault every NVM access fails.
            let _ = terminal::CardChannel::transmit(c.channel(), &cmd.to_bytes());
        }
    };
    let observe = |nvm: FaultNvm| -> Observation {
        let card = Card::boot(nvm).map_err(|e| e.to_string())?;
        let image = card.image();
        Ok(observed(if case.intermediate.iter().any(|i| i == image) {
            &pre_image
        } else {
            image
        }))
    };
    let report = exhaust(
        &case.pre,
        run,
        observe,
        &Ok(observed(&pre_image)),
        &Ok(observed(&post_image)),
        opts,
    )
    .unwrap_or_else(|failure| panic!("{}: {failure}", case.name));
    let sampling = match opts.double_faults {
        DoubleFaults::All => String::new(),
        DoubleFaults::EveryNthBoundary(n) => {
            format!(" [second faults at every {n}-th byte boundary]")
        }
    };
    println!("{:<28} {report}{sampling}", case.name);
    assert!(report.pre_outcomes > 0 && report.post_outcomes > 0);
    TOTAL_CASES.fetch_add(report.cases, Ordering::Relaxed);
    report
}

/// Most double-fault cases one command may take. Single faults are always exhaustive (every
/// write, every byte boundary, both weak readings); the second fault is injected at every write
/// of the recovery, and at every byte boundary as long as the estimate below stays under this
/// budget — beyond it, at every n-th boundary (the report says how many were sampled out).
const DOUBLE_FAULT_BUDGET: u64 = 400_000;

fn budget(command_bytes: usize) -> TearOptions {
    // Single faults ≈ 2 per byte written; a recovery rewrites about the same bytes again.
    let estimate = (2 * command_bytes as u64).pow(2);
    let every_nth = estimate.div_ceil(DOUBLE_FAULT_BUDGET).max(1) as usize;
    TearOptions {
        double_faults: if every_nth == 1 {
            DoubleFaults::All
        } else {
            DoubleFaults::EveryNthBoundary(every_nth)
        },
        ..TearOptions::default()
    }
}

fn no_setup(_: &mut Client) {}

fn verify(c: &mut Client) {
    c.verify_pin(PIN).expect("verify");
}

fn store_data(p1: u8, p2: u8, data: Vec<u8>) -> Command {
    Command::new(0x80, INS_STORE_DATA, p1, p2, data)
}

#[test]
fn every_writing_command_is_all_or_nothing() {
    let w = World::new(0x7EA5);
    let mut reports = Vec::new();

    // Personalisation: a middle block and the final block.
    let blank = nvm_bytes(w.client(w.blank_card()));
    let blocks = w.personalisation().blocks();
    reports.push(tear(TearCase {
        name: "STORE DATA (perso block)",
        pre: blank.clone(),
        setup: &no_setup,
        commands: vec![store_data(0x00, 0x00, blocks[0].clone())],
        intermediate: vec![],
    }));
    let almost = {
        let mut c = w.client(w.blank_card());
        c.select_card_manager().unwrap();
        for (i, b) in blocks[..blocks.len() - 1].iter().enumerate() {
            c.send("STORE DATA", store_data(0x00, i as u8, b.clone()))
                .unwrap();
        }
        nvm_bytes(c)
    };
    let last = blocks.len() - 1;
    reports.push(tear(TearCase {
        name: "STORE DATA (perso last)",
        pre: almost,
        setup: &no_setup,
        commands: vec![store_data(0x80, last as u8, blocks[last].clone())],
        intermediate: vec![],
    }));

    let personalised = nvm_bytes(w.personalised());
    // A CRL after personalisation.
    let crl = w.pki.data_registrar_crl(&[w.pki.provider_2.cert.serial()]);
    let crl_dgi = terminal::dgi(DGI_CRL, crl.der());
    reports.push(tear(TearCase {
        name: "STORE DATA (CRL)",
        pre: personalised.clone(),
        setup: &no_setup,
        commands: vec![store_data(0x80, 0x00, crl_dgi)],
        intermediate: vec![],
    }));

    // VERIFY: a wrong PIN (one commit), and the right PIN after a wrong one (two commits:
    // the try is spent, then restored).
    reports.push(tear(TearCase {
        name: "VERIFY (wrong PIN)",
        pre: personalised.clone(),
        setup: &no_setup,
        commands: vec![Command::new(0x00, INS_VERIFY, 0x00, 0x80, b"0000".to_vec())],
        intermediate: vec![],
    }));
    let one_wrong = {
        let mut c = w.personalised();
        let _ = c.verify_pin("0000");
        nvm_bytes(c)
    };
    let spent = {
        let mut c = w.personalised();
        let _ = c.verify_pin("0000");
        let _ = c.verify_pin("0000");
        image_of(&nvm_bytes(c))
    };
    reports.push(tear(TearCase {
        name: "VERIFY (right PIN)",
        pre: one_wrong,
        setup: &no_setup,
        commands: vec![Command::new(
            0x00,
            INS_VERIFY,
            0x00,
            0x80,
            PIN.as_bytes().to_vec(),
        )],
        intermediate: vec![spent],
    }));

    // Keys and registration.
    reports.push(tear(TearCase {
        name: "GENERATE KEY PAIR",
        pre: personalised.clone(),
        setup: &verify,
        commands: vec![Command::new(0x00, INS_GENERATE_KEY_PAIR, 0, 0, vec![]).with_le(256)],
        intermediate: vec![],
    }));
    let challenge = Challenge([0x33; 16]);
    let mut register_data = tlv::encode(TAG_USER_INFO, &w.user.to_der());
    register_data.extend(tlv::encode(TAG_ISSUER_CHALLENGE, &challenge.0));
    let register_cmd = Command::new(0x80, INS_REGISTER, 0, 0, register_data).with_le(256);
    reports.push(tear(TearCase {
        name: "REGISTER (key generation)",
        pre: personalised.clone(),
        setup: &verify,
        commands: vec![register_cmd.clone()],
        intermediate: vec![],
    }));
    let (with_key, rc) = {
        let mut c = client(FaultNvm::from_bytes(&personalised)).unwrap();
        c.verify_pin(PIN).unwrap();
        let reg = c.register(&w.user, &challenge.0).unwrap();
        let rc = w.issue_rc(&reg, &challenge);
        (c.into_channel().into_card().into_nvm().snapshot(), rc)
    };
    let mut complete = tlv::encode(TAG_RC_DER, rc.der());
    complete.extend(tlv::encode(TAG_IRC_DER, w.pki.issuer.cert.der()));
    reports.push(tear(TearCase {
        name: "REGISTER COMPLETE",
        pre: with_key.clone(),
        setup: &verify,
        commands: vec![Command::new(
            0x80,
            INS_REGISTER_COMPLETE,
            0,
            0,
            complete.clone(),
        )],
        intermediate: vec![],
    }));
    let registered = {
        let mut c = client(FaultNvm::from_bytes(&with_key)).unwrap();
        c.verify_pin(PIN).unwrap();
        c.register_complete(&rc, &w.pki.issuer.cert).unwrap();
        c.into_channel().into_card().into_nvm().snapshot()
    };

    // Storing: INSTALL (no write) then the LOAD that commits.
    let sdi = w.sdi(Operation::Store, b"item-1", 1, DATA);
    let ch = first_challenge(&registered, true);
    let sa = w.sa(Path::ViaIssuer, &sdi, ch, &rc);
    let install = |c: &mut Client| {
        c.verify_pin(PIN).expect("verify");
        let got = Challenge(c.get_challenge().expect("challenge"));
        assert_eq!(got, ch, "the seeded card repeats its first challenge");
        c.install_for_load(&sa, None).expect("install");
    };
    reports.push(tear(TearCase {
        name: "LOAD (store commit)",
        pre: registered.clone(),
        setup: &install,
        commands: vec![Command::new(0x80, INS_LOAD, 0x80, 0x00, DATA.to_vec()).with_le(256)],
        intermediate: vec![],
    }));
    let holding = {
        let mut c = client(FaultNvm::from_bytes(&registered)).unwrap();
        install(&mut c);
        c.load(DATA).unwrap();
        c.into_channel().into_card().into_nvm().snapshot()
    };

    // DELETE.
    let del = w.sdi(Operation::Delete, b"item-1", 1, DATA);
    let ch = first_challenge(&holding, true);
    let del_sa = w.sa(Path::ViaProvider, &del, ch, &rc);
    let verify_and_challenge = |c: &mut Client| {
        c.verify_pin(PIN).expect("verify");
        c.get_challenge().expect("challenge");
    };
    reports.push(tear(TearCase {
        name: "DELETE",
        pre: holding.clone(),
        setup: &verify_and_challenge,
        commands: vec![Command::new(
            0x80,
            INS_DELETE,
            0,
            0,
            tlv::encode(TAG_AUTHORIZATION, &del_sa.to_der()),
        )
        .with_le(256)],
        intermediate: vec![],
    }));

    // Issuer commands.
    let just_challenge = |c: &mut Client| {
        c.get_challenge().expect("challenge");
    };
    let issuer_cmd = |pre: &[u8], ins: u8, p1: u8, p2: u8, action: IssuerAction| {
        let ch = first_challenge(pre, false);
        Command::new(
            if ins == INS_RESET_RETRY_COUNTER {
                0x00
            } else {
                0x80
            },
            ins,
            p1,
            p2,
            tlv::encode(TAG_ISSUER_COMMAND, &w.issuer_command(action, ch).to_der()),
        )
    };
    let blocked = {
        let mut c = client(FaultNvm::from_bytes(&holding)).unwrap();
        for _ in 0..3 {
            let _ = c.verify_pin("0000");
        }
        c.into_channel().into_card().into_nvm().snapshot()
    };
    reports.push(tear(TearCase {
        name: "RESET RETRY COUNTER",
        pre: blocked.clone(),
        setup: &just_challenge,
        commands: vec![issuer_cmd(
            &blocked,
            INS_RESET_RETRY_COUNTER,
            0x03,
            0x80,
            IssuerAction::UnblockPin,
        )],
        intermediate: vec![],
    }));
    reports.push(tear(TearCase {
        name: "SET STATUS (lock)",
        pre: holding.clone(),
        setup: &just_challenge,
        commands: vec![issuer_cmd(
            &holding,
            INS_SET_STATUS,
            0x80,
            0x7F,
            IssuerAction::Lock,
        )],
        intermediate: vec![],
    }));
    let locked = {
        let mut c = client(FaultNvm::from_bytes(&holding)).unwrap();
        c.get_challenge().unwrap();
        c.send(
            "SET STATUS",
            issuer_cmd(&holding, INS_SET_STATUS, 0x80, 0x7F, IssuerAction::Lock),
        )
        .unwrap();
        c.into_channel().into_card().into_nvm().snapshot()
    };
    reports.push(tear(TearCase {
        name: "SET STATUS (unlock)",
        pre: locked.clone(),
        setup: &just_challenge,
        commands: vec![issuer_cmd(
            &locked,
            INS_SET_STATUS,
            0x80,
            0x0F,
            IssuerAction::Unlock,
        )],
        intermediate: vec![],
    }));
    reports.push(tear(TearCase {
        name: "SET STATUS (terminate)",
        pre: holding.clone(),
        setup: &just_challenge,
        commands: vec![issuer_cmd(
            &holding,
            INS_SET_STATUS,
            0x80,
            0xFF,
            IssuerAction::Terminate,
        )],
        intermediate: vec![],
    }));
    reports.push(tear(TearCase {
        name: "TAMPER",
        pre: holding.clone(),
        setup: &no_setup,
        commands: vec![Command::new(0x80, INS_TAMPER, 0, 0, vec![])],
        intermediate: vec![],
    }));

    let total = TOTAL_CASES.load(Ordering::Relaxed);
    let single: u64 = reports.iter().map(|r| r.single_fault_cases).sum();
    let double: u64 = reports.iter().map(|r| r.double_fault_cases).sum();
    println!(
        "tear test: {} writing commands, {total} cases ({single} single-fault, {double} \
         double-fault), every one pre- or post-command",
        reports.len()
    );
    assert_eq!(reports.len(), 15);
}
