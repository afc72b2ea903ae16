//! [`Store`] on SQLite and PostgreSQL with one set of SQL (the dialect both share: `$n`
//! parameters, `RETURNING`, `ON CONFLICT DO NOTHING`); `server_kit::on_pool!` expands each body
//! once per backend. Only the migrations differ (BLOB vs BYTEA).
//!
//! Concurrency: RC serials come from a single-row counter; a registration's first statement
//! spends its challenge (`spent_at IS NULL` in the WHERE clause), and a receipt's first
//! statement moves the card's ledger head conditioned on the length the writer read. On
//! PostgreSQL the row lock queues a concurrent writer, whose WHERE is then re-evaluated on the
//! committed row and matches nothing; on SQLite the first write takes the database lock. Either
//! way the loser changes nothing and is told so. RC revocations and CRLs (REG-3) follow the
//! registrar's pattern: the first statement bumps the single-row `rc_crl_head`, so writers
//! queue there, CRL numbers are never reused (they are also the primary key of `rc_crls`) and
//! each CRL lists every revocation committed before it. A standing-check nonce's insert first
//! writes its card's row (a no-op update), so inserts for one card queue there and each counts
//! the card's open nonces with the others committed.

use async_trait::async_trait;
use crypto::Digest;
use pki::{CardId, PartyId, UnixTime};
use protocol::{Challenge, ItemId, ListedItem, Nonce, OperationId, Policy, ServiceId};
use server_kit::{on_pool, Db, MigrationSet};

use super::{
    AppendOutcome, Application, AttemptOutcome, AttemptRecord, AuthorizationRecord, CardRecord,
    CardSummary, CardView, ChallengeRecord, CheckInsert, CheckRecord, CrlRecord, CrlSigner,
    DelegationRecord, DownloadRecord, DownloadState, ItemChange, LedgerRecord, NotificationRecord,
    NotificationState, OpenOutcome, ProviderPolicy, ProviderStatus, ProviderUrl, RcRevocation,
    ReceiptAppend, RegisterOutcome, RegistrationRecord, RevocationReason, RevokeOutcome,
    SendOutcome, Store, StoreError,
};

/// The issuer's migrations, applied by [`Db::migrate`].
pub const MIGRATIONS: MigrationSet = MigrationSet {
    component: "issuer",
    sqlite: &[
        server_kit::Migration {
            version: 1,
            description: "issuer",
            sql: include_str!("../../migrations/sqlite/0001_issuer.sql"),
        },
        server_kit::Migration {
            version: 2,
            description: "provider url",
            sql: include_str!("../../migrations/sqlite/0002_provider_url.sql"),
        },
        server_kit::Migration {
            version: 3,
            description: "rc revocations",
            sql: include_str!("../../migrations/sqlite/0003_rc_revocations.sql"),
        },
        server_kit::Migration {
            version: 4,
            description: "applications and downloads",
            sql: include_str!("../../migrations/sqlite/0004_applications_downloads.sql"),
        },
        server_kit::Migration {
            version: 5,
            description: "card checks bounded",
            sql: include_str!("../../migrations/sqlite/0005_card_checks_bounded.sql"),
        },
    ],
    postgres: &[
        server_kit::Migration {
            version: 1,
            description: "issuer",
            sql: include_str!("../../migrations/postgres/0001_issuer.sql"),
        },
        server_kit::Migration {
            version: 2,
            description: "provider url",
            sql: include_str!("../../migrations/postgres/0002_provider_url.sql"),
        },
        server_kit::Migration {
            version: 3,
            description: "rc revocations",
            sql: include_str!("../../migrations/postgres/0003_rc_revocations.sql"),
        },
        server_kit::Migration {
            version: 4,
            description: "applications and downloads",
            sql: include_str!("../../migrations/postgres/0004_applications_downloads.sql"),
        },
        server_kit::Migration {
            version: 5,
            description: "card checks bounded",
            sql: include_str!("../../migrations/postgres/0005_card_checks_bounded.sql"),
        },
    ],
};

/// The issuer's store on an open, migrated [`Db`].
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: Db,
}

impl SqlStore {
    /// Applies the issuer's migrations (and server-kit's) and returns the store.
    pub async fn open(db: Db) -> Result<SqlStore, server_kit::DbError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(SqlStore { db })
    }
}

fn to_db(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

fn from_db(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
    })
}

fn small_from_db<T: TryFrom<i64>>(what: &'static str, value: i64) -> Result<T, StoreError> {
    T::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
    })
}

fn time_from_db(what: &'static str, value: i64) -> Result<UnixTime, StoreError> {
    from_db(what, value).map(UnixTime)
}

fn card_key(card_id: &CardId) -> String {
    card_id.to_hex()
}

fn card_from_db(text: &str) -> Result<CardId, StoreError> {
    hex::decode(text)
        .ok()
        .and_then(|b| CardId::from_slice(&b))
        .ok_or_else(|| StoreError::Corrupt {
            what: "card ID",
            value: text.to_string(),
        })
}

fn digest_key(digest: &Digest) -> String {
    hex::encode(digest.0)
}

fn digest_from_bytes(what: &'static str, bytes: &[u8]) -> Result<Digest, StoreError> {
    <[u8; 32]>::try_from(bytes)
        .map(Digest)
        .map_err(|_| StoreError::Corrupt {
            what,
            value: hex::encode(bytes),
        })
}

fn digest_from_text(what: &'static str, text: &str) -> Result<Digest, StoreError> {
    let bytes = hex::decode(text).map_err(|_| StoreError::Corrupt {
        what,
        value: text.to_string(),
    })?;
    digest_from_bytes(what, &bytes)
}

fn challenge_key(challenge: &Challenge) -> String {
    hex::encode(challenge.0)
}

fn challenge_from_db(text: &str) -> Result<Challenge, StoreError> {
    hex::decode(text)
        .ok()
        .and_then(|b| <[u8; 16]>::try_from(b.as_slice()).ok())
        .map(Challenge)
        .ok_or_else(|| StoreError::Corrupt {
            what: "challenge",
            value: text.to_string(),
        })
}

fn party_from_db(what: &'static str, text: String) -> Result<PartyId, StoreError> {
    PartyId::new(&text).map_err(|_| StoreError::Corrupt { what, value: text })
}

fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(e) if e.is_unique_violation())
}

fn item_key(item_id: &ItemId) -> String {
    hex::encode(item_id.as_bytes())
}

fn item_from_db(what: &'static str, text: &str) -> Result<ItemId, StoreError> {
    hex::decode(text)
        .ok()
        .and_then(|b| ItemId::new(&b).ok())
        .ok_or_else(|| StoreError::Corrupt {
            what,
            value: text.to_string(),
        })
}

fn operation_from_db(text: &str) -> Result<OperationId, StoreError> {
    OperationId::from_hex(text).map_err(|_| StoreError::Corrupt {
        what: "operation ID",
        value: text.to_string(),
    })
}

fn nonce_key(nonce: &Nonce) -> String {
    hex::encode(nonce.as_bytes())
}

fn nonce_from_db(text: &str) -> Result<Nonce, StoreError> {
    hex::decode(text)
        .ok()
        .and_then(|b| Nonce::new(&b).ok())
        .ok_or_else(|| StoreError::Corrupt {
            what: "check nonce",
            value: text.to_string(),
        })
}

fn policy_from_db(what: &'static str, value: i64) -> Result<Policy, StoreError> {
    small_from_db::<u32>(what, value).and_then(|bits| {
        Policy::from_bits(bits).map_err(|_| StoreError::Corrupt {
            what,
            value: bits.to_string(),
        })
    })
}

fn optional_time(what: &'static str, value: Option<i64>) -> Result<Option<UnixTime>, StoreError> {
    value.map(|t| time_from_db(what, t)).transpose()
}

const APPLICATION_COLUMNS: &str =
    "aid, version, size, digest, provider, name, description, policy, added_at, added_by";

type ApplicationRow = (
    String,
    i64,
    i64,
    Vec<u8>,
    String,
    String,
    String,
    i64,
    i64,
    String,
);

fn application_from_row(row: ApplicationRow) -> Result<Application, StoreError> {
    let (aid, version, size, digest, provider, name, description, policy, added_at, added_by) = row;
    Ok(Application {
        aid: item_from_db("application AID", &aid)?,
        version: small_from_db("application version", version)?,
        size: small_from_db("application size", size)?,
        digest: digest_from_bytes("application digest", &digest)?,
        provider: party_from_db("application provider", provider)?,
        name,
        description,
        policy: policy_from_db("application policy", policy)?,
        added_at: time_from_db("added_at", added_at)?,
        added_by,
    })
}

const DOWNLOAD_COLUMNS: &str = "operation_id, card_id, provider, service_id, aid, version, \
     request_der, application_der, sdi_der, sdi_digest, state, opened_at, installed_at, \
     receipt_counter";

type DownloadRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
);

fn download_from_row(row: DownloadRow) -> Result<DownloadRecord, StoreError> {
    let (
        operation_id,
        card_id,
        provider,
        service_id,
        aid,
        version,
        request_der,
        application_der,
        sdi_der,
        sdi_digest,
        state,
        opened_at,
        installed_at,
        receipt_counter,
    ) = row;
    Ok(DownloadRecord {
        operation_id: operation_from_db(&operation_id)?,
        card_id: card_from_db(&card_id)?,
        provider: party_from_db("download provider", provider)?,
        service_id: ServiceId::new(&service_id).map_err(|_| StoreError::Corrupt {
            what: "service ID",
            value: service_id.clone(),
        })?,
        aid: item_from_db("download AID", &aid)?,
        version: small_from_db("download version", version)?,
        request_der,
        application_der,
        sdi_der,
        sdi_digest: digest_from_text("download SDI digest", &sdi_digest)?,
        state: DownloadState::parse(&state).ok_or(StoreError::Corrupt {
            what: "download state",
            value: state,
        })?,
        opened_at: time_from_db("opened_at", opened_at)?,
        installed_at: optional_time("installed_at", installed_at)?,
        receipt_counter: receipt_counter
            .map(|c| from_db("receipt counter", c))
            .transpose()?,
    })
}

const ATTEMPT_COLUMNS: &str = "operation_id, attempt, challenge, sar_digest, sar_der, sa_der, \
     sa_digest, not_after, issued_at";

type AttemptRow = (
    String,
    i64,
    String,
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<String>,
    Option<i64>,
    i64,
);

fn attempt_from_row(row: AttemptRow) -> Result<AttemptRecord, StoreError> {
    let (operation_id, attempt, challenge, sar_digest, sar_der, sa_der, sa_digest, not_after, at) =
        row;
    Ok(AttemptRecord {
        operation_id: operation_from_db(&operation_id)?,
        attempt: small_from_db("attempt", attempt)?,
        challenge: challenge_from_db(&challenge)?,
        sar_digest: digest_from_text("SAR digest", &sar_digest)?,
        sar_der,
        sa_der,
        sa_digest: sa_digest
            .map(|d| digest_from_text("SA digest", &d))
            .transpose()?,
        not_after: optional_time("SA not_after", not_after)?,
        issued_at: time_from_db("attempt issued_at", at)?,
    })
}

/// Expired standing-check nonces deleted per insert at most (so one call's cost is bounded;
/// each insert adds one row, so the purge keeps up).
const CHECK_PURGE_BATCH: i64 = 256;

/// The member notification `n` is next in its card's order at its provider: no undelivered
/// notification to the same provider for the same card has a lower receipt counter (the
/// provider refuses a card's counter that does not increase, so an earlier one delivered later
/// would be refused for good).
const IN_COUNTER_ORDER: &str = "NOT EXISTS (SELECT 1 FROM member_notifications e \
     JOIN downloads f ON f.operation_id = e.operation_id \
     JOIN downloads d ON d.operation_id = n.operation_id \
     WHERE e.provider = n.provider AND f.card_id = d.card_id AND e.state <> 'delivered' \
     AND f.receipt_counter < d.receipt_counter)";

const NOTIFICATION_COLUMNS: &str = "operation_id, provider, body, state, attempts, \
     next_attempt_at, lease_holder, lease_until, last_error, created_at, delivered_at";

type NotificationRow = (
    String,
    String,
    Vec<u8>,
    String,
    i64,
    i64,
    Option<String>,
    Option<i64>,
    Option<String>,
    i64,
    Option<i64>,
);

fn notification_from_row(row: NotificationRow) -> Result<NotificationRecord, StoreError> {
    let (
        operation_id,
        provider,
        body,
        state,
        attempts,
        next_attempt_at,
        lease_holder,
        lease_until,
        last_error,
        created_at,
        delivered_at,
    ) = row;
    Ok(NotificationRecord {
        operation_id: operation_from_db(&operation_id)?,
        provider: party_from_db("notification provider", provider)?,
        body,
        state: NotificationState::parse(&state).ok_or(StoreError::Corrupt {
            what: "notification state",
            value: state,
        })?,
        attempts: small_from_db("notification attempts", attempts)?,
        next_attempt_at: time_from_db("next_attempt_at", next_attempt_at)?,
        lease_holder,
        lease_until: optional_time("lease_until", lease_until)?,
        last_error,
        created_at: time_from_db("notification created_at", created_at)?,
        delivered_at: optional_time("delivered_at", delivered_at)?,
    })
}

type CardRow = (
    String,
    Vec<u8>,
    i64,
    Vec<u8>,
    i64,
    Vec<u8>,
    i64,
    i64,
    String,
);

fn card_from_row(row: CardRow) -> Result<CardRecord, StoreError> {
    let (card_id, sk_wrapped, sk_version, pin_salt, tries, authenticator, capacity, at, by) = row;
    Ok(CardRecord {
        card_id: card_from_db(&card_id)?,
        sk_wrapped,
        sk_version: small_from_db("Sk version", sk_version)?,
        pin_salt: <[u8; 16]>::try_from(pin_salt.as_slice()).map_err(|_| StoreError::Corrupt {
            what: "PIN salt",
            value: hex::encode(&pin_salt),
        })?,
        pin_try_limit: small_from_db("PIN try limit", tries)?,
        issuer_authenticator: authenticator,
        capacity: small_from_db("capacity", capacity)?,
        personalised_at: time_from_db("personalised_at", at)?,
        personalised_by: by,
    })
}

type RegistrationRow = (
    String,
    i64,
    String,
    Vec<u8>,
    String,
    String,
    String,
    String,
    i64,
);

fn registration_from_row(row: RegistrationRow) -> Result<RegistrationRecord, StoreError> {
    let (card_id, serial, challenge, rc_der, rc_digest, user_id, user_name, user_email, at) = row;
    Ok(RegistrationRecord {
        card_id: card_from_db(&card_id)?,
        serial: from_db("RC serial", serial)?,
        challenge: challenge_from_db(&challenge)?,
        rc_der,
        rc_digest: digest_from_text("RC digest", &rc_digest)?,
        user_id,
        user_name,
        user_email,
        registered_at: time_from_db("registered_at", at)?,
    })
}

type ItemRow = (String, i64, i64, Vec<u8>, String, i64);

fn item_from_row(row: ItemRow) -> Result<ListedItem, StoreError> {
    let (item_id, version, size, data_digest, owner, policy) = row;
    let corrupt = |what: &'static str, value: String| StoreError::Corrupt { what, value };
    Ok(ListedItem {
        item_id: hex::decode(&item_id)
            .ok()
            .and_then(|b| ItemId::new(&b).ok())
            .ok_or_else(|| corrupt("item ID", item_id.clone()))?,
        version: small_from_db("item version", version)?,
        size: small_from_db("item size", size)?,
        data_digest: digest_from_bytes("item data digest", &data_digest)?,
        owner: party_from_db("item owner", owner)?,
        policy: small_from_db::<u32>("item policy", policy).and_then(|bits| {
            Policy::from_bits(bits).map_err(|_| corrupt("item policy", bits.to_string()))
        })?,
    })
}

type RevocationRow = (String, i64, String, i64, String);

fn revocation_from_row(row: RevocationRow) -> Result<RcRevocation, StoreError> {
    let (card_id, serial, reason, revoked_at, revoked_by) = row;
    Ok(RcRevocation {
        card_id: card_from_db(&card_id)?,
        serial: from_db("RC serial", serial)?,
        reason: RevocationReason::parse(&reason).ok_or(StoreError::Corrupt {
            what: "revocation reason",
            value: reason,
        })?,
        revoked_at: time_from_db("revoked_at", revoked_at)?,
        revoked_by,
    })
}

type CrlRow = (i64, i64, i64, Vec<u8>);

fn crl_from_row(row: CrlRow) -> Result<CrlRecord, StoreError> {
    let (number, this_update, next_update, der) = row;
    Ok(CrlRecord {
        number: from_db("CRL number", number)?,
        this_update: time_from_db("CRL thisUpdate", this_update)?,
        next_update: time_from_db("CRL nextUpdate", next_update)?,
        der,
    })
}

fn sign_crl(signer: &dyn CrlSigner, number: i64, revoked: &[i64]) -> Result<CrlRecord, StoreError> {
    let number = from_db("CRL number", number)?;
    let revoked = revoked
        .iter()
        .map(|&serial| from_db("revoked serial", serial))
        .collect::<Result<Vec<u64>, _>>()?;
    let crl = signer
        .sign(number, &revoked)
        .map_err(|source| StoreError::CrlSigning { number, source })?;
    if crl.number != number {
        // A signer numbering CRLs itself would break the uniqueness the counter gives.
        return Err(StoreError::Corrupt {
            what: "CRL number from signer",
            value: crl.number.to_string(),
        });
    }
    Ok(crl)
}

/// Within the transaction `$tx`: signs the CRL numbered `$number` over every revoked serial
/// with `$signer` and records it; evaluates to the record.
macro_rules! sign_and_insert_crl {
    ($tx:expr, $number:expr, $signer:expr) => {{
        let revoked: Vec<i64> =
            sqlx::query_scalar("SELECT serial FROM rc_revocations ORDER BY serial")
                .fetch_all(&mut *$tx)
                .await?;
        let crl = sign_crl($signer, $number, &revoked)?;
        sqlx::query(
            "INSERT INTO rc_crls (number, this_update, next_update, der) VALUES ($1, $2, $3, $4)",
        )
        .bind($number)
        .bind(to_db("CRL thisUpdate", crl.this_update.0)?)
        .bind(to_db("CRL nextUpdate", crl.next_update.0)?)
        .bind(&crl.der)
        .execute(&mut *$tx)
        .await?;
        crl
    }};
}

#[async_trait]
impl Store for SqlStore {
    async fn insert_card(&self, c: &CardRecord) -> Result<(), StoreError> {
        let result = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO cards (card_id, sk_wrapped, sk_version, pin_salt, pin_try_limit, \
                 issuer_authenticator, capacity, personalised_at, personalised_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(card_key(&c.card_id))
            .bind(&c.sk_wrapped)
            .bind(i64::from(c.sk_version))
            .bind(c.pin_salt.as_slice())
            .bind(i64::from(c.pin_try_limit))
            .bind(&c.issuer_authenticator)
            .bind(i64::from(c.capacity))
            .bind(to_db("personalised_at", c.personalised_at.0)?)
            .bind(&c.personalised_by)
            .execute(pool)
            .await
            .map(drop)
        });
        match result {
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::DuplicateCard { card_id: c.card_id })
            }
            other => Ok(other?),
        }
    }

    async fn card(&self, card_id: &CardId) -> Result<Option<CardRecord>, StoreError> {
        let row: Option<CardRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT card_id, sk_wrapped, sk_version, pin_salt, pin_try_limit, \
                 issuer_authenticator, capacity, personalised_at, personalised_by \
                 FROM cards WHERE card_id = $1",
            )
            .bind(card_key(card_id))
            .fetch_optional(pool)
            .await?
        });
        row.map(card_from_row).transpose()
    }

    async fn insert_challenge(&self, c: &ChallengeRecord) -> Result<(), StoreError> {
        let result = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO registration_challenges (challenge, card_id, issued_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(challenge_key(&c.challenge))
            .bind(card_key(&c.card_id))
            .bind(to_db("issued_at", c.issued_at.0)?)
            .bind(to_db("expires_at", c.expires_at.0)?)
            .execute(pool)
            .await
            .map(drop)
        });
        match result {
            Err(e) if is_unique_violation(&e) => Err(StoreError::DuplicateChallenge {
                challenge: c.challenge,
            }),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => {
                Err(StoreError::UnknownCard { card_id: c.card_id })
            }
            other => Ok(other?),
        }
    }

    async fn challenge(
        &self,
        challenge: &Challenge,
    ) -> Result<Option<ChallengeRecord>, StoreError> {
        let row: Option<(String, String, i64, i64, Option<i64>)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT challenge, card_id, issued_at, expires_at, spent_at \
                 FROM registration_challenges WHERE challenge = $1",
            )
            .bind(challenge_key(challenge))
            .fetch_optional(pool)
            .await?
        });
        row.map(|(challenge, card_id, issued_at, expires_at, spent_at)| {
            Ok(ChallengeRecord {
                challenge: challenge_from_db(&challenge)?,
                card_id: card_from_db(&card_id)?,
                issued_at: time_from_db("issued_at", issued_at)?,
                expires_at: time_from_db("expires_at", expires_at)?,
                spent_at: spent_at.map(|t| time_from_db("spent_at", t)).transpose()?,
            })
        })
        .transpose()
    }

    async fn next_rc_serial(&self) -> Result<u64, StoreError> {
        let serial: i64 = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(
                "UPDATE rc_serial_counter SET last_serial = last_serial + 1 WHERE id = 1 \
                 RETURNING last_serial",
            )
            .fetch_one(pool)
            .await?
        });
        from_db("RC serial", serial)
    }

    async fn register(&self, r: &RegistrationRecord) -> Result<RegisterOutcome, StoreError> {
        let card = card_key(&r.card_id);
        let at = to_db("registered_at", r.registered_at.0)?;
        let serial = to_db("RC serial", r.serial)?;
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // First statement: spend the challenge (the single-use lock).
            let spent = sqlx::query(
                "UPDATE registration_challenges SET spent_at = $1 \
                 WHERE challenge = $2 AND card_id = $3 AND spent_at IS NULL",
            )
            .bind(at)
            .bind(challenge_key(&r.challenge))
            .bind(&card)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if spent != 1 {
                tx.rollback().await?;
                return Ok(RegisterOutcome::ChallengeSpent);
            }
            let inserted = sqlx::query(
                "INSERT INTO registrations (card_id, serial, challenge, rc_der, rc_digest, \
                 user_id, user_name, user_email, registered_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(&card)
            .bind(serial)
            .bind(challenge_key(&r.challenge))
            .bind(&r.rc_der)
            .bind(digest_key(&r.rc_digest))
            .bind(&r.user_id)
            .bind(&r.user_name)
            .bind(&r.user_email)
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted != 1 {
                tx.rollback().await?;
                return Ok(RegisterOutcome::AlreadyRegistered);
            }
            sqlx::query(
                "INSERT INTO card_views (card_id, last_counter, ledger_len, head) \
                 VALUES ($1, 0, 0, $2)",
            )
            .bind(&card)
            .bind(protocol::LedgerEntry::GENESIS_PREV.0.as_slice())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(RegisterOutcome::Registered)
        })
    }

    async fn registration(
        &self,
        card_id: &CardId,
    ) -> Result<Option<RegistrationRecord>, StoreError> {
        let row: Option<RegistrationRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT card_id, serial, challenge, rc_der, rc_digest, user_id, user_name, \
                 user_email, registered_at FROM registrations WHERE card_id = $1",
            )
            .bind(card_key(card_id))
            .fetch_optional(pool)
            .await?
        });
        row.map(registration_from_row).transpose()
    }

    async fn put_provider(&self, p: &ProviderPolicy) -> Result<(), StoreError> {
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO providers (provider, status, quota_bytes, updated_at, url) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider) DO UPDATE SET \
                 status = excluded.status, quota_bytes = excluded.quota_bytes, \
                 updated_at = excluded.updated_at, url = excluded.url",
            )
            .bind(p.provider.as_str())
            .bind(p.status.as_str())
            .bind(i64::from(p.quota_bytes))
            .bind(to_db("updated_at", p.updated_at.0)?)
            .bind(p.url.as_ref().map(ProviderUrl::as_str))
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    async fn provider(&self, provider: &PartyId) -> Result<Option<ProviderPolicy>, StoreError> {
        let row: Option<ProviderRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT provider, status, quota_bytes, updated_at, url FROM providers \
                 WHERE provider = $1",
            )
            .bind(provider.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(provider_from_row).transpose()
    }

    async fn insert_authorization(&self, a: &AuthorizationRecord) -> Result<bool, StoreError> {
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO authorizations (sar_digest, direction, card_id, provider, \
                 sdi_digest, sdi_der, object_der, issued_at, not_after) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
            )
            .bind(digest_key(&a.sar_digest))
            .bind(a.direction.as_str())
            .bind(card_key(&a.card_id))
            .bind(a.provider.as_str())
            .bind(digest_key(&a.sdi_digest))
            .bind(&a.sdi_der)
            .bind(&a.object_der)
            .bind(to_db("issued_at", a.issued_at.0)?)
            .bind(to_db("not_after", a.not_after.0)?)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    async fn sdi_by_digest(&self, sdi_digest: &Digest) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_pool!(&self.db, |pool| {
            sqlx::query_scalar("SELECT sdi_der FROM authorizations WHERE sdi_digest = $1 LIMIT 1")
                .bind(digest_key(sdi_digest))
                .fetch_optional(pool)
                .await?
        }))
    }

    async fn insert_delegation(&self, d: &DelegationRecord) -> Result<(), StoreError> {
        let result = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO delegations (digest, provider, card_id, issued_at, not_after, der) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(digest_key(&d.digest))
            .bind(d.provider.as_str())
            .bind(d.card_id.as_ref().map(card_key))
            .bind(to_db("issued_at", d.issued_at.0)?)
            .bind(to_db("not_after", d.not_after.0)?)
            .bind(&d.der)
            .execute(pool)
            .await
            .map(drop)
        });
        match result {
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::DuplicateDelegation { digest: d.digest })
            }
            other => Ok(other?),
        }
    }

    async fn card_view(&self, card_id: &CardId) -> Result<Option<CardView>, StoreError> {
        let card = card_key(card_id);
        let (head, items): (Option<(i64, i64, Vec<u8>)>, Vec<ItemRow>) =
            on_pool!(&self.db, |pool| {
                // One transaction so the head and the items are one snapshot's (PostgreSQL
                // READ COMMITTED would otherwise let a receipt land between the two reads).
                let mut tx = pool.begin().await?;
                let head = sqlx::query_as(
                    "SELECT last_counter, ledger_len, head FROM card_views WHERE card_id = $1",
                )
                .bind(&card)
                .fetch_optional(&mut *tx)
                .await?;
                let items = sqlx::query_as(
                    "SELECT item_id, version, size, data_digest, owner, policy FROM card_items \
                     WHERE card_id = $1 ORDER BY item_id",
                )
                .bind(&card)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                (head, items)
            });
        let Some((last_counter, ledger_len, head)) = head else {
            return Ok(None);
        };
        Ok(Some(CardView {
            card_id: *card_id,
            last_counter: from_db("last counter", last_counter)?,
            ledger_len: from_db("ledger length", ledger_len)?,
            head: digest_from_bytes("ledger head", &head)?,
            items: items
                .into_iter()
                .map(item_from_row)
                .collect::<Result<_, _>>()?,
        }))
    }

    async fn ledger_entry_by_receipt(
        &self,
        receipt_digest: &Digest,
    ) -> Result<Option<LedgerRecord>, StoreError> {
        let row: Option<(String, i64, i64, Vec<u8>)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT card_id, seq, counter, entry_der FROM ledger_entries \
                 WHERE receipt_digest = $1",
            )
            .bind(digest_key(receipt_digest))
            .fetch_optional(pool)
            .await?
        });
        row.map(|(card_id, seq, counter, entry_der)| {
            Ok(LedgerRecord {
                card_id: card_from_db(&card_id)?,
                seq: from_db("ledger seq", seq)?,
                counter: from_db("receipt counter", counter)?,
                entry_der,
            })
        })
        .transpose()
    }

    async fn append_receipt(&self, a: &ReceiptAppend) -> Result<AppendOutcome, StoreError> {
        let card = card_key(&a.card_id);
        let expected = to_db("ledger length", a.expected_len)?;
        let next = to_db("ledger length", a.expected_len.saturating_add(1))?;
        let counter = to_db("receipt counter", a.counter)?;
        let head = crypto::sha256(&a.entry_der);
        let recorded_at = to_db("recorded_at", a.recorded_at.0)?;
        let completion = a
            .completes
            .as_ref()
            .map(|c| (c.operation_id.to_hex(), &c.notification));
        let (notification_due, notification_created) = match &a.completes {
            Some(c) => (
                to_db("next_attempt_at", c.notification.next_attempt_at.0)?,
                to_db("created_at", c.notification.created_at.0)?,
            ),
            None => (0, 0),
        };
        // An async block so that `?` on a unique violation lands in `result` (and the
        // transaction, dropped, rolls back) instead of leaving the function.
        let result: Result<AppendOutcome, sqlx::Error> = on_pool!(&self.db, |pool| async {
            let mut tx = pool.begin().await?;
            // First statement: move the head, only from the length this writer read.
            let moved = sqlx::query(
                "UPDATE card_views SET ledger_len = $1, last_counter = $2, head = $3 \
                 WHERE card_id = $4 AND ledger_len = $5",
            )
            .bind(next)
            .bind(counter)
            .bind(head.0.as_slice())
            .bind(&card)
            .bind(expected)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if moved != 1 {
                tx.rollback().await?;
                return Ok(AppendOutcome::Conflict);
            }
            sqlx::query(
                "INSERT INTO ledger_entries (card_id, seq, counter, receipt_digest, entry_der, \
                 recorded_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&card)
            .bind(expected)
            .bind(counter)
            .bind(digest_key(&a.receipt_digest))
            .bind(&a.entry_der)
            .bind(recorded_at)
            .execute(&mut *tx)
            .await?;
            match &a.change {
                ItemChange::Put(item) => {
                    sqlx::query(
                        "INSERT INTO card_items (card_id, item_id, version, size, data_digest, \
                         owner, policy) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                         ON CONFLICT (card_id, item_id) DO UPDATE SET version = excluded.version, \
                         size = excluded.size, data_digest = excluded.data_digest, \
                         owner = excluded.owner, policy = excluded.policy",
                    )
                    .bind(&card)
                    .bind(hex::encode(item.item_id.as_bytes()))
                    .bind(i64::from(item.version))
                    .bind(i64::from(item.size))
                    .bind(item.data_digest.0.as_slice())
                    .bind(item.owner.as_str())
                    .bind(i64::from(item.policy.bits()))
                    .execute(&mut *tx)
                    .await?;
                }
                ItemChange::Remove(item_id) => {
                    sqlx::query("DELETE FROM card_items WHERE card_id = $1 AND item_id = $2")
                        .bind(&card)
                        .bind(hex::encode(item_id.as_bytes()))
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if let Some((operation, n)) = &completion {
                sqlx::query(
                    "UPDATE downloads SET state = 'installed', installed_at = $1, \
                     receipt_counter = $2 \
                     WHERE operation_id = $3 AND state IN ('opened', 'expired')",
                )
                .bind(recorded_at)
                .bind(counter)
                .bind(operation)
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO member_notifications (operation_id, provider, body, state, \
                     attempts, next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 0, $5, $6) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(operation)
                .bind(n.provider.as_str())
                .bind(&n.body)
                .bind(n.state.as_str())
                .bind(notification_due)
                .bind(notification_created)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(AppendOutcome::Appended)
        }
        .await);
        match result {
            // The same receipt recorded by another writer in between: the caller re-reads.
            Err(e) if is_unique_violation(&e) => Ok(AppendOutcome::Conflict),
            other => Ok(other?),
        }
    }

    async fn ledger(&self, card_id: &CardId) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(on_pool!(&self.db, |pool| {
            sqlx::query_scalar(
                "SELECT entry_der FROM ledger_entries WHERE card_id = $1 ORDER BY seq",
            )
            .bind(card_key(card_id))
            .fetch_all(pool)
            .await?
        }))
    }

    async fn revoke_rc(
        &self,
        card_id: &CardId,
        reason: RevocationReason,
        revoked_at: UnixTime,
        revoked_by: &str,
        signer: &dyn CrlSigner,
    ) -> Result<RevokeOutcome, StoreError> {
        let card = card_key(card_id);
        let at = to_db("revoked_at", revoked_at.0)?;
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // First statement: take the CRL lock and the next number (rolled back, so unused,
            // if nothing changes).
            let number: i64 = sqlx::query_scalar(
                "UPDATE rc_crl_head SET number = number + 1 WHERE id = 1 RETURNING number",
            )
            .fetch_one(&mut *tx)
            .await?;
            let registered: Option<(i64, Option<String>, Option<i64>, Option<String>)> =
                sqlx::query_as(
                    "SELECT r.serial, v.reason, v.revoked_at, v.revoked_by FROM registrations r \
                     LEFT JOIN rc_revocations v ON v.serial = r.serial WHERE r.card_id = $1",
                )
                .bind(&card)
                .fetch_optional(&mut *tx)
                .await?;
            let serial = match registered {
                None => {
                    tx.rollback().await?;
                    return Ok(RevokeOutcome::NotRegistered);
                }
                Some((serial, Some(reason), Some(at), Some(by))) => {
                    tx.rollback().await?;
                    return Ok(RevokeOutcome::AlreadyRevoked {
                        existing: revocation_from_row((card.clone(), serial, reason, at, by))?,
                    });
                }
                Some((serial, ..)) => serial,
            };
            sqlx::query(
                "INSERT INTO rc_revocations (serial, card_id, reason, revoked_at, revoked_by) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(serial)
            .bind(&card)
            .bind(reason.as_str())
            .bind(at)
            .bind(revoked_by)
            .execute(&mut *tx)
            .await?;
            let crl = sign_and_insert_crl!(tx, number, signer);
            tx.commit().await?;
            Ok(RevokeOutcome::Revoked {
                revocation: RcRevocation {
                    card_id: *card_id,
                    serial: from_db("RC serial", serial)?,
                    reason,
                    revoked_at,
                    revoked_by: revoked_by.to_string(),
                },
                crl,
            })
        })
    }

    async fn rc_revocation(&self, card_id: &CardId) -> Result<Option<RcRevocation>, StoreError> {
        let row: Option<RevocationRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT card_id, serial, reason, revoked_at, revoked_by FROM rc_revocations \
                 WHERE card_id = $1",
            )
            .bind(card_key(card_id))
            .fetch_optional(pool)
            .await?
        });
        row.map(revocation_from_row).transpose()
    }

    async fn current_crl(&self) -> Result<Option<CrlRecord>, StoreError> {
        let row: Option<CrlRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT number, this_update, next_update, der FROM rc_crls \
                 ORDER BY number DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        row.map(crl_from_row).transpose()
    }

    async fn reissue_crl(
        &self,
        replacing: u64,
        signer: &dyn CrlSigner,
    ) -> Result<CrlRecord, StoreError> {
        let replacing = to_db("CRL number", replacing)?;
        let reissued: Option<CrlRecord> = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // Only from the number the caller saw: of two instances re-signing at once, one
            // signs and the other returns its CRL.
            let number: Option<i64> = sqlx::query_scalar(
                "UPDATE rc_crl_head SET number = number + 1 WHERE id = 1 AND number = $1 \
                 RETURNING number",
            )
            .bind(replacing)
            .fetch_optional(&mut *tx)
            .await?;
            match number {
                None => {
                    tx.rollback().await?;
                    None
                }
                Some(number) => {
                    let crl = sign_and_insert_crl!(tx, number, signer);
                    tx.commit().await?;
                    Some(crl)
                }
            }
        });
        match reissued {
            Some(crl) => Ok(crl),
            None => self.current_crl().await?.ok_or(StoreError::Corrupt {
                what: "CRL counter",
                value: "moved past a CRL that is not recorded".into(),
            }),
        }
    }

    async fn insert_application(
        &self,
        a: &Application,
        code: &[u8],
    ) -> Result<Option<Application>, StoreError> {
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO applications (aid, version, size, digest, provider, name, \
                 description, policy, code, added_at, added_by) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING",
            )
            .bind(item_key(&a.aid))
            .bind(i64::from(a.version))
            .bind(i64::from(a.size))
            .bind(a.digest.0.as_slice())
            .bind(a.provider.as_str())
            .bind(&a.name)
            .bind(&a.description)
            .bind(i64::from(a.policy.bits()))
            .bind(code)
            .bind(to_db("added_at", a.added_at.0)?)
            .bind(&a.added_by)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            return Ok(None);
        }
        self.application(&a.aid, Some(a.version))
            .await?
            .map(Some)
            .ok_or(StoreError::Corrupt {
                what: "application",
                value: "refused as a duplicate but not found".into(),
            })
    }

    async fn application(
        &self,
        aid: &ItemId,
        version: Option<u32>,
    ) -> Result<Option<Application>, StoreError> {
        let sql = match version {
            Some(_) => format!(
                "SELECT {APPLICATION_COLUMNS} FROM applications WHERE aid = $1 AND version = $2"
            ),
            None => format!(
                "SELECT {APPLICATION_COLUMNS} FROM applications WHERE aid = $1 \
                 ORDER BY version DESC LIMIT 1"
            ),
        };
        let row: Option<ApplicationRow> = on_pool!(&self.db, |pool| {
            let query = sqlx::query_as(&sql).bind(item_key(aid));
            match version {
                Some(v) => query.bind(i64::from(v)).fetch_optional(pool).await?,
                None => query.fetch_optional(pool).await?,
            }
        });
        row.map(application_from_row).transpose()
    }

    async fn applications(&self) -> Result<Vec<Application>, StoreError> {
        let sql = format!("SELECT {APPLICATION_COLUMNS} FROM applications ORDER BY aid, version");
        let rows: Vec<ApplicationRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql).fetch_all(pool).await?
        });
        rows.into_iter().map(application_from_row).collect()
    }

    async fn application_code(
        &self,
        aid: &ItemId,
        version: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_pool!(&self.db, |pool| {
            sqlx::query_scalar("SELECT code FROM applications WHERE aid = $1 AND version = $2")
                .bind(item_key(aid))
                .bind(i64::from(version))
                .fetch_optional(pool)
                .await?
        }))
    }

    async fn insert_check(
        &self,
        c: &CheckRecord,
        max_open: u32,
        purge_before: UnixTime,
    ) -> Result<CheckInsert, StoreError> {
        let card = card_key(&c.card_id);
        let issued_at = to_db("issued_at", c.issued_at.0)?;
        let expires_at = to_db("expires_at", c.expires_at.0)?;
        let purge_before = to_db("purge_before", purge_before.0)?;
        // An async block so that `?` on a unique violation lands in `result` (and the
        // transaction, dropped, rolls back) instead of leaving the function.
        let result: Result<Option<(i64, Option<i64>)>, sqlx::Error> =
            on_pool!(&self.db, |pool| async {
                let mut tx = pool.begin().await?;
                // First statement: the card's row, held until the end, so that one insert at a
                // time counts the card's open nonces (PostgreSQL: a row lock other writers of
                // the card's nonces queue on; SQLite: the write lock). Zero rows: no such card.
                let known = sqlx::query("UPDATE cards SET capacity = capacity WHERE card_id = $1")
                    .bind(&card)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if known != 1 {
                    tx.rollback().await?;
                    return Ok(None);
                }
                sqlx::query(
                    "DELETE FROM card_checks WHERE nonce IN \
                     (SELECT nonce FROM card_checks WHERE expires_at < $1 LIMIT $2)",
                )
                .bind(purge_before)
                .bind(CHECK_PURGE_BATCH)
                .execute(&mut *tx)
                .await?;
                let (open, first_expiry): (i64, Option<i64>) = sqlx::query_as(
                    "SELECT COUNT(*), MIN(expires_at) FROM card_checks \
                     WHERE card_id = $1 AND spent_at IS NULL AND expires_at >= $2",
                )
                .bind(&card)
                .bind(issued_at)
                .fetch_one(&mut *tx)
                .await?;
                if open < i64::from(max_open) {
                    sqlx::query(
                        "INSERT INTO card_checks (nonce, card_id, issued_at, expires_at) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(nonce_key(&c.nonce))
                    .bind(&card)
                    .bind(issued_at)
                    .bind(expires_at)
                    .execute(&mut *tx)
                    .await?;
                }
                // Refused or not, the purge stands.
                tx.commit().await?;
                Ok(Some((open, first_expiry)))
            }
            .await);
        match result {
            Ok(None) => Err(StoreError::UnknownCard { card_id: c.card_id }),
            Ok(Some((open, _))) if open < i64::from(max_open) => Ok(CheckInsert::Inserted),
            Ok(Some((open, first_expiry))) => Ok(CheckInsert::TooMany {
                open: small_from_db("open check count", open)?,
                next_expiry: match first_expiry {
                    Some(t) => time_from_db("expires_at", t)?,
                    None => c.expires_at,
                },
            }),
            Err(e) if is_unique_violation(&e) => Err(StoreError::DuplicateNonce {
                nonce: c.nonce.clone(),
            }),
            Err(e) => Err(e.into()),
        }
    }

    async fn check(&self, nonce: &Nonce) -> Result<Option<CheckRecord>, StoreError> {
        let row: Option<(String, String, i64, i64, Option<i64>)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT nonce, card_id, issued_at, expires_at, spent_at FROM card_checks \
                 WHERE nonce = $1",
            )
            .bind(nonce_key(nonce))
            .fetch_optional(pool)
            .await?
        });
        row.map(|(nonce, card_id, issued_at, expires_at, spent_at)| {
            Ok(CheckRecord {
                nonce: nonce_from_db(&nonce)?,
                card_id: card_from_db(&card_id)?,
                issued_at: time_from_db("issued_at", issued_at)?,
                expires_at: time_from_db("expires_at", expires_at)?,
                spent_at: optional_time("spent_at", spent_at)?,
            })
        })
        .transpose()
    }

    async fn spend_check(
        &self,
        nonce: &Nonce,
        card_id: &CardId,
        at: UnixTime,
    ) -> Result<bool, StoreError> {
        let spent = on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE card_checks SET spent_at = $1 \
                 WHERE nonce = $2 AND card_id = $3 AND spent_at IS NULL",
            )
            .bind(to_db("spent_at", at.0)?)
            .bind(nonce_key(nonce))
            .bind(card_key(card_id))
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(spent == 1)
    }

    async fn open_download(
        &self,
        d: &DownloadRecord,
        expiring: Option<&OperationId>,
    ) -> Result<OpenOutcome, StoreError> {
        const ATTEMPTS: u32 = 3;
        let operation = d.operation_id.to_hex();
        let card = card_key(&d.card_id);
        let aid = item_key(&d.aid);
        let expiring = expiring.map(OperationId::to_hex);
        let opened_at = to_db("opened_at", d.opened_at.0)?;
        let installed_at = d
            .installed_at
            .map(|t| to_db("installed_at", t.0))
            .transpose()?;
        let receipt_counter = d
            .receipt_counter
            .map(|c| to_db("receipt counter", c))
            .transpose()?;
        for _ in 0..ATTEMPTS {
            let inserted: u64 = on_pool!(&self.db, |pool| {
                let mut tx = pool.begin().await?;
                if let Some(expiring) = &expiring {
                    // Only an operation of this card and application still open; on PostgreSQL
                    // a concurrent replacer waits for this row's lock and then matches nothing.
                    sqlx::query(
                        "UPDATE downloads SET state = 'expired' \
                         WHERE operation_id = $1 AND card_id = $2 AND aid = $3 \
                         AND state = 'opened'",
                    )
                    .bind(expiring)
                    .bind(&card)
                    .bind(&aid)
                    .execute(&mut *tx)
                    .await?;
                }
                let inserted = sqlx::query(
                    "INSERT INTO downloads (operation_id, card_id, provider, service_id, aid, \
                     version, request_der, application_der, sdi_der, sdi_digest, state, \
                     opened_at, installed_at, receipt_counter) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&operation)
                .bind(&card)
                .bind(d.provider.as_str())
                .bind(d.service_id.as_str())
                .bind(&aid)
                .bind(i64::from(d.version))
                .bind(&d.request_der)
                .bind(&d.application_der)
                .bind(&d.sdi_der)
                .bind(digest_key(&d.sdi_digest))
                .bind(d.state.as_str())
                .bind(opened_at)
                .bind(installed_at)
                .bind(receipt_counter)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 1 {
                    tx.commit().await?;
                } else {
                    // The expiring operation stays open when this one does not open.
                    tx.rollback().await?;
                }
                inserted
            });
            if inserted == 1 {
                return Ok(OpenOutcome::Opened);
            }
            if let Some(existing) = self.download(&d.operation_id).await? {
                return Ok(OpenOutcome::Exists(Box::new(existing)));
            }
            let open: Option<String> = on_pool!(&self.db, |pool| {
                sqlx::query_scalar(
                    "SELECT operation_id FROM downloads \
                     WHERE card_id = $1 AND aid = $2 AND state = 'opened'",
                )
                .bind(card_key(&d.card_id))
                .bind(item_key(&d.aid))
                .fetch_optional(pool)
                .await?
            });
            if let Some(open) = open {
                return Ok(OpenOutcome::InProgress(operation_from_db(&open)?));
            }
            // The open operation that refused this one was installed in between: again.
        }
        Err(StoreError::Corrupt {
            what: "downloads",
            value: "an insert kept conflicting with rows that were gone on reading".into(),
        })
    }

    async fn download(
        &self,
        operation_id: &OperationId,
    ) -> Result<Option<DownloadRecord>, StoreError> {
        let sql = format!("SELECT {DOWNLOAD_COLUMNS} FROM downloads WHERE operation_id = $1");
        let row: Option<DownloadRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(operation_id.to_hex())
                .fetch_optional(pool)
                .await?
        });
        row.map(download_from_row).transpose()
    }

    async fn downloads(
        &self,
        card_id: Option<&CardId>,
        state: Option<DownloadState>,
    ) -> Result<Vec<DownloadRecord>, StoreError> {
        // NULL parameters match everything: one statement for the four combinations.
        let sql = format!(
            "SELECT {DOWNLOAD_COLUMNS} FROM downloads \
             WHERE ($1 IS NULL OR card_id = $1) AND ($2 IS NULL OR state = $2) \
             ORDER BY opened_at, operation_id"
        );
        let card = card_id.map(card_key);
        let state = state.map(DownloadState::as_str);
        let rows: Vec<DownloadRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(card.as_deref())
                .bind(state)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(download_from_row).collect()
    }

    async fn insert_attempt(
        &self,
        t: &AttemptRecord,
        a: &AuthorizationRecord,
    ) -> Result<AttemptOutcome, StoreError> {
        let operation = t.operation_id.to_hex();
        let issued_at = to_db("issued_at", t.issued_at.0)?;
        let a_issued_at = to_db("issued_at", a.issued_at.0)?;
        let a_not_after = to_db("not_after", a.not_after.0)?;
        let result: Result<(), sqlx::Error> = on_pool!(&self.db, |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query(
                "INSERT INTO download_attempts (operation_id, attempt, challenge, sar_digest, \
                 sar_der, issued_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&operation)
            .bind(i64::from(t.attempt))
            .bind(challenge_key(&t.challenge))
            .bind(digest_key(&t.sar_digest))
            .bind(&t.sar_der)
            .bind(issued_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO authorizations (sar_digest, direction, card_id, provider, \
                 sdi_digest, sdi_der, object_der, issued_at, not_after) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(digest_key(&a.sar_digest))
            .bind(a.direction.as_str())
            .bind(card_key(&a.card_id))
            .bind(a.provider.as_str())
            .bind(digest_key(&a.sdi_digest))
            .bind(&a.sdi_der)
            .bind(&a.object_der)
            .bind(a_issued_at)
            .bind(a_not_after)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        }
        .await);
        match result {
            Ok(()) => Ok(AttemptOutcome::Inserted),
            Err(e) if is_unique_violation(&e) => {
                let same = self
                    .attempts(&t.operation_id)
                    .await?
                    .into_iter()
                    .find(|existing| existing.challenge == t.challenge);
                Ok(match same {
                    Some(existing) => AttemptOutcome::SameChallenge(existing),
                    None => AttemptOutcome::NumberTaken,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn attempts(&self, operation_id: &OperationId) -> Result<Vec<AttemptRecord>, StoreError> {
        let sql = format!(
            "SELECT {ATTEMPT_COLUMNS} FROM download_attempts WHERE operation_id = $1 \
             ORDER BY attempt"
        );
        let rows: Vec<AttemptRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(operation_id.to_hex())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(attempt_from_row).collect()
    }

    async fn set_attempt_sa(
        &self,
        operation_id: &OperationId,
        attempt: u32,
        sa_der: &[u8],
        sa_digest: &Digest,
        not_after: UnixTime,
    ) -> Result<Option<AttemptRecord>, StoreError> {
        let operation = operation_id.to_hex();
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "UPDATE download_attempts SET sa_der = $1, sa_digest = $2, not_after = $3 \
                 WHERE operation_id = $4 AND attempt = $5 AND sa_der IS NULL",
            )
            .bind(sa_der)
            .bind(digest_key(sa_digest))
            .bind(to_db("not_after", not_after.0)?)
            .bind(&operation)
            .bind(i64::from(attempt))
            .execute(pool)
            .await?;
        });
        Ok(self
            .attempts(operation_id)
            .await?
            .into_iter()
            .find(|a| a.attempt == attempt))
    }

    async fn attempt_by_sa(&self, sa_digest: &Digest) -> Result<Option<AttemptRecord>, StoreError> {
        let sql = format!("SELECT {ATTEMPT_COLUMNS} FROM download_attempts WHERE sa_digest = $1");
        let row: Option<AttemptRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(digest_key(sa_digest))
                .fetch_optional(pool)
                .await?
        });
        row.map(attempt_from_row).transpose()
    }

    async fn notification(
        &self,
        operation_id: &OperationId,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM member_notifications WHERE operation_id = $1"
        );
        let row: Option<NotificationRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(operation_id.to_hex())
                .fetch_optional(pool)
                .await?
        });
        row.map(notification_from_row).transpose()
    }

    async fn notifications(
        &self,
        state: Option<NotificationState>,
    ) -> Result<Vec<NotificationRecord>, StoreError> {
        let sql = format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM member_notifications \
             WHERE ($1 IS NULL OR state = $1) ORDER BY created_at, operation_id"
        );
        let state = state.map(NotificationState::as_str);
        let rows: Vec<NotificationRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql).bind(state).fetch_all(pool).await?
        });
        rows.into_iter().map(notification_from_row).collect()
    }

    async fn due_notifications(
        &self,
        now: UnixTime,
        limit: u32,
    ) -> Result<Vec<OperationId>, StoreError> {
        let now = to_db("now", now.0)?;
        let sql = format!(
            "SELECT n.operation_id FROM member_notifications n \
             WHERE n.state <> 'delivered' AND n.next_attempt_at <= $1 \
             AND (n.lease_until IS NULL OR n.lease_until < $1) AND {IN_COUNTER_ORDER} \
             ORDER BY n.next_attempt_at, n.operation_id LIMIT $2"
        );
        let rows: Vec<String> = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(&sql)
                .bind(now)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.iter().map(|op| operation_from_db(op)).collect()
    }

    async fn claim_notification(
        &self,
        operation_id: &OperationId,
        holder: &str,
        now: UnixTime,
        lease_until: UnixTime,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        // The one conditional update two notifiers race on: on PostgreSQL the second waits
        // for the first's row lock and then finds the lease taken; on SQLite the write lock
        // orders them.
        let sql = format!(
            "UPDATE member_notifications AS n SET lease_holder = $1, lease_until = $2 \
             WHERE n.operation_id = $3 AND n.state <> 'delivered' AND n.next_attempt_at <= $4 \
             AND (n.lease_until IS NULL OR n.lease_until < $4) AND {IN_COUNTER_ORDER} \
             RETURNING {NOTIFICATION_COLUMNS}"
        );
        let lease_until = to_db("lease_until", lease_until.0)?;
        let now = to_db("now", now.0)?;
        let row: Option<NotificationRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(holder)
                .bind(lease_until)
                .bind(operation_id.to_hex())
                .bind(now)
                .fetch_optional(pool)
                .await?
        });
        row.map(notification_from_row).transpose()
    }

    async fn finish_notification(
        &self,
        operation_id: &OperationId,
        holder: &str,
        outcome: &SendOutcome,
    ) -> Result<bool, StoreError> {
        let operation = operation_id.to_hex();
        let changed = match outcome {
            SendOutcome::Delivered { at } => {
                let at = to_db("delivered_at", at.0)?;
                on_pool!(&self.db, |pool| {
                    sqlx::query(
                        "UPDATE member_notifications SET state = 'delivered', \
                         attempts = attempts + 1, delivered_at = $1, last_error = NULL, \
                         lease_holder = NULL, lease_until = NULL \
                         WHERE operation_id = $2 AND lease_holder = $3",
                    )
                    .bind(at)
                    .bind(&operation)
                    .bind(holder)
                    .execute(pool)
                    .await?
                    .rows_affected()
                })
            }
            SendOutcome::Failed {
                state,
                next_attempt_at,
                error,
            } => {
                let next = to_db("next_attempt_at", next_attempt_at.0)?;
                on_pool!(&self.db, |pool| {
                    sqlx::query(
                        "UPDATE member_notifications SET state = $1, attempts = attempts + 1, \
                         next_attempt_at = $2, last_error = $3, lease_holder = NULL, \
                         lease_until = NULL WHERE operation_id = $4 AND lease_holder = $5",
                    )
                    .bind(state.as_str())
                    .bind(next)
                    .bind(error)
                    .bind(&operation)
                    .bind(holder)
                    .execute(pool)
                    .await?
                    .rows_affected()
                })
            }
        };
        Ok(changed == 1)
    }

    async fn retry_notification(
        &self,
        operation_id: &OperationId,
        now: UnixTime,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let sql = format!(
            "UPDATE member_notifications SET next_attempt_at = $1 \
             WHERE operation_id = $2 AND state <> 'delivered' RETURNING {NOTIFICATION_COLUMNS}"
        );
        let now = to_db("now", now.0)?;
        let row: Option<NotificationRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(now)
                .bind(operation_id.to_hex())
                .fetch_optional(pool)
                .await?
        });
        row.map(notification_from_row).transpose()
    }

    async fn card_summaries(&self) -> Result<Vec<CardSummary>, StoreError> {
        let rows: Vec<CardSummaryRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT c.card_id, c.capacity, c.personalised_at, r.user_id, r.user_name, \
                 r.registered_at, v.revoked_at, cv.last_counter, cv.ledger_len, \
                 (SELECT COUNT(*) FROM card_items i WHERE i.card_id = c.card_id), \
                 (SELECT CAST(COALESCE(SUM(i.size), 0) AS BIGINT) FROM card_items i \
                  WHERE i.card_id = c.card_id), \
                 (SELECT COUNT(*) FROM card_items i JOIN applications a \
                  ON a.aid = i.item_id AND a.version = i.version WHERE i.card_id = c.card_id), \
                 (SELECT e.entry_der FROM ledger_entries e WHERE e.card_id = c.card_id \
                  ORDER BY e.seq DESC LIMIT 1) \
                 FROM cards c \
                 LEFT JOIN registrations r ON r.card_id = c.card_id \
                 LEFT JOIN rc_revocations v ON v.card_id = c.card_id \
                 LEFT JOIN card_views cv ON cv.card_id = c.card_id \
                 ORDER BY c.personalised_at, c.card_id",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(card_summary_from_row).collect()
    }

    async fn providers(&self) -> Result<Vec<ProviderPolicy>, StoreError> {
        let rows: Vec<ProviderRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT provider, status, quota_bytes, updated_at, url FROM providers \
                 ORDER BY provider",
            )
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(provider_from_row).collect()
    }
}

type CardSummaryRow = (
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    i64,
    Option<Vec<u8>>,
);

fn card_summary_from_row(row: CardSummaryRow) -> Result<CardSummary, StoreError> {
    let (
        card_id,
        capacity,
        personalised_at,
        user_id,
        user_name,
        registered_at,
        revoked_at,
        last_counter,
        ledger_len,
        items,
        used,
        applications,
        last_entry_der,
    ) = row;
    Ok(CardSummary {
        card_id: card_from_db(&card_id)?,
        capacity: small_from_db("capacity", capacity)?,
        personalised_at: time_from_db("personalised_at", personalised_at)?,
        holder: user_id.map(|id| (id, user_name.unwrap_or_default())),
        registered_at: optional_time("registered_at", registered_at)?,
        revoked_at: optional_time("revoked_at", revoked_at)?,
        last_counter: last_counter
            .map(|c| from_db("last counter", c))
            .transpose()?,
        ledger_len: ledger_len.map_or(Ok(0), |n| from_db("ledger length", n))?,
        items: from_db("item count", items)?,
        used: from_db("bytes used", used)?,
        applications: from_db("application count", applications)?,
        last_entry_der,
    })
}

type ProviderRow = (String, String, i64, i64, Option<String>);

fn provider_from_row(row: ProviderRow) -> Result<ProviderPolicy, StoreError> {
    let (provider, status, quota, at, url) = row;
    Ok(ProviderPolicy {
        provider: party_from_db("provider", provider)?,
        status: ProviderStatus::parse(&status).ok_or(StoreError::Corrupt {
            what: "provider status",
            value: status,
        })?,
        quota_bytes: small_from_db("quota", quota)?,
        updated_at: time_from_db("updated_at", at)?,
        url: url
            .map(|u| {
                ProviderUrl::parse(&u).map_err(|_| StoreError::Corrupt {
                    what: "provider url",
                    value: u,
                })
            })
            .transpose()?,
    })
}
