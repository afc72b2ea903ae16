//! [`Store`] on SQLite and PostgreSQL with one set of SQL: every statement is valid in both
//! dialects (`$n` parameters, `ON CONFLICT`), and `server_kit::on_pool!` expands each body once
//! per backend, type-checked against its driver. Only the migrations differ (BLOB vs BYTEA).
//!
//! Concurrency: a receipt's transaction first inserts-or-updates the card's `cards` row. On
//! PostgreSQL that row lock queues concurrent receipts for one card (READ COMMITTED then sees
//! the others' committed rows); on SQLite the first write takes the database's write lock
//! before anything is read. So each ledger has one head and counters are checked against the
//! latest committed one.

use async_trait::async_trait;
use crypto::Digest;
use pki::{CardId, PartyId, UnixTime};
use protocol::{ItemId, LedgerEntry, Policy};
use server_kit::{on_pool, Db, MigrationSet};

use super::{
    ConsentKind, ConsentRecord, DelegationRecord, EntrySigner, ItemRecord, LedgerRecord,
    NewReceipt, PublishOutcome, ReceiptOutcome, RegistrarSdciRecord, Store, StoreError, ViewChange,
    ViewItem,
};

/// The provider's migrations, applied by [`Db::migrate`].
pub const MIGRATIONS: MigrationSet = MigrationSet {
    component: "provider",
    sqlite: &[
        server_kit::Migration {
            version: 1,
            description: "provider",
            sql: include_str!("../../migrations/sqlite/0001_provider.sql"),
        },
        server_kit::Migration {
            version: 2,
            description: "delegations",
            sql: include_str!("../../migrations/sqlite/0002_delegations.sql"),
        },
        server_kit::Migration {
            version: 3,
            description: "registrar sdcis",
            sql: include_str!("../../migrations/sqlite/0003_registrar_sdcis.sql"),
        },
        server_kit::Migration {
            version: 4,
            description: "services members",
            sql: include_str!("../../migrations/sqlite/0004_services_members.sql"),
        },
    ],
    postgres: &[
        server_kit::Migration {
            version: 1,
            description: "provider",
            sql: include_str!("../../migrations/postgres/0001_provider.sql"),
        },
        server_kit::Migration {
            version: 2,
            description: "delegations",
            sql: include_str!("../../migrations/postgres/0002_delegations.sql"),
        },
        server_kit::Migration {
            version: 3,
            description: "registrar sdcis",
            sql: include_str!("../../migrations/postgres/0003_registrar_sdcis.sql"),
        },
        server_kit::Migration {
            version: 4,
            description: "services members",
            sql: include_str!("../../migrations/postgres/0004_services_members.sql"),
        },
    ],
};

/// The provider's store on an open, migrated [`Db`].
#[derive(Debug, Clone)]
pub struct SqlStore {
    pub(super) db: Db,
}

impl SqlStore {
    /// Applies the provider's migrations (and server-kit's) and returns the store.
    pub async fn open(db: Db) -> Result<SqlStore, server_kit::DbError> {
        db.migrate(&MIGRATIONS).await?;
        Ok(SqlStore { db })
    }
}

pub(super) fn to_db(what: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { what, value })
}

pub(super) fn from_db(what: &'static str, value: i64) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
    })
}

pub(super) fn u32_from_db(what: &'static str, value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        value: value.to_string(),
    })
}

pub(super) fn digest_from_db(what: &'static str, bytes: Vec<u8>) -> Result<Digest, StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Digest)
        .map_err(|_| StoreError::Corrupt {
            what,
            value: hex::encode(&bytes),
        })
}

pub(super) fn item_id_from_db(bytes: Vec<u8>) -> Result<ItemId, StoreError> {
    ItemId::new(&bytes).map_err(|_| StoreError::Corrupt {
        what: "item ID",
        value: hex::encode(&bytes),
    })
}

pub(super) fn party_from_db(what: &'static str, text: String) -> Result<PartyId, StoreError> {
    PartyId::new(&text).map_err(|_| StoreError::Corrupt { what, value: text })
}

pub(super) fn card_id_from_db(bytes: Vec<u8>) -> Result<CardId, StoreError> {
    CardId::from_slice(&bytes).ok_or_else(|| StoreError::Corrupt {
        what: "card ID",
        value: hex::encode(&bytes),
    })
}

pub(super) fn policy_from_db(value: i64) -> Result<Policy, StoreError> {
    let bits = u32_from_db("policy", value)?;
    Policy::from_bits(bits).map_err(|_| StoreError::Corrupt {
        what: "policy",
        value: bits.to_string(),
    })
}

type ItemRow = (Vec<u8>, i64, i64, Vec<u8>, i64, i64);
const ITEM_COLUMNS: &str = "item_id, version, size, data_digest, policy, published_at";

fn item_from_row(row: ItemRow) -> Result<ItemRecord, StoreError> {
    let (item_id, version, size, data_digest, policy, published_at) = row;
    Ok(ItemRecord {
        item_id: item_id_from_db(item_id)?,
        version: u32_from_db("version", version)?,
        size: u32_from_db("size", size)?,
        data_digest: digest_from_db("data digest", data_digest)?,
        policy: policy_from_db(policy)?,
        published_at: UnixTime(from_db("published_at", published_at)?),
    })
}

pub(super) type ViewRow = (Vec<u8>, i64, i64, Vec<u8>, i64);

pub(super) fn view_from_row(row: ViewRow) -> Result<ViewItem, StoreError> {
    let (item_id, version, size, data_digest, policy) = row;
    Ok(ViewItem {
        item_id: item_id_from_db(item_id)?,
        version: u32_from_db("version", version)?,
        size: u32_from_db("size", size)?,
        data_digest: digest_from_db("data digest", data_digest)?,
        policy: policy_from_db(policy)?,
    })
}

type ConsentRow = (
    Vec<u8>,
    String,
    Vec<u8>,
    Vec<u8>,
    i64,
    Vec<u8>,
    Vec<u8>,
    Vec<u8>,
    i64,
);
const CONSENT_COLUMNS: &str = "consent_digest, kind, card_id, item_id, version, sdi_digest, \
     sdi_der, signed_der, created_at";

fn consent_from_row(row: ConsentRow) -> Result<ConsentRecord, StoreError> {
    let (digest, kind, card_id, item_id, version, sdi_digest, sdi_der, signed_der, created_at) =
        row;
    Ok(ConsentRecord {
        consent_digest: digest_from_db("consent digest", digest)?,
        kind: ConsentKind::parse(&kind).ok_or(StoreError::Corrupt {
            what: "consent kind",
            value: kind,
        })?,
        card_id: card_id_from_db(card_id)?,
        item_id: item_id_from_db(item_id)?,
        version: u32_from_db("version", version)?,
        sdi_digest: digest_from_db("SDI digest", sdi_digest)?,
        sdi_der,
        signed_der,
        created_at: UnixTime(from_db("created_at", created_at)?),
    })
}

type DelegationRow = (Vec<u8>, String, Option<Vec<u8>>, i64, Vec<u8>, i64);
const DELEGATION_COLUMNS: &str =
    "delegation_digest, issuer, card_id, not_after, delegation_der, stored_at";

fn delegation_from_row(row: DelegationRow) -> Result<DelegationRecord, StoreError> {
    let (digest, issuer, card_id, not_after, delegation_der, stored_at) = row;
    Ok(DelegationRecord {
        digest: digest_from_db("delegation digest", digest)?,
        issuer: party_from_db("delegation issuer", issuer)?,
        card_id: card_id.map(card_id_from_db).transpose()?,
        not_after: UnixTime(from_db("not_after", not_after)?),
        delegation_der,
        stored_at: UnixTime(from_db("stored_at", stored_at)?),
    })
}

type RegistrarSdciRow = (Vec<u8>, String, Vec<u8>, i64);
const REGISTRAR_SDCI_COLUMNS: &str = "sdi_digest, registrar, sdci_der, obtained_at";

fn registrar_sdci_from_row(row: RegistrarSdciRow) -> Result<RegistrarSdciRecord, StoreError> {
    let (sdi_digest, registrar, sdci_der, obtained_at) = row;
    Ok(RegistrarSdciRecord {
        sdi_digest: digest_from_db("SDI digest", sdi_digest)?,
        registrar: party_from_db("SDCI' registrar", registrar)?,
        sdci_der,
        obtained_at: UnixTime(from_db("obtained_at", obtained_at)?),
    })
}

pub(super) fn ledger_from_row(
    (seq, counter, entry_der): (i64, i64, Vec<u8>),
) -> Result<LedgerRecord, StoreError> {
    Ok(LedgerRecord {
        seq: from_db("seq", seq)?,
        counter: from_db("counter", counter)?,
        entry_der,
    })
}

/// The ledger step of recording a receipt, inside the open transaction `$tx` (committed or
/// rolled back by the caller): the card's row first (created if new, then locked; see the
/// module doc), the RC check, a repeat answered with its entry, the counter check, the view
/// change, the entry signed by `$signer` over the view after it and appended, the card's head
/// moved. Evaluates to `Result<ReceiptOutcome, StoreError>`; only `Recorded` wrote anything
/// the caller should commit. A macro so each backend's body is type-checked against its own
/// driver (`on_pool!`).
macro_rules! append_receipt {
    ($tx:ident, $r:expr, $signer:expr) => {
        async {
            let r: &NewReceipt = $r;
            let signer: &dyn EntrySigner = $signer;
            let card = r.card_id.0.as_slice();
            let counter = to_db("receipt counter", r.counter)?;
            let receipt_digest = crypto::sha256(&r.receipt_der);
            let recorded_at = to_db("recorded_at", r.recorded_at.0)?;
            sqlx::query(
                "INSERT INTO cards (card_id, rc_der, last_counter, entries, head) \
                 VALUES ($1, $2, 0, 0, $3) ON CONFLICT DO NOTHING",
            )
            .bind(card)
            .bind(r.rc_der.as_slice())
            .bind(LedgerEntry::GENESIS_PREV.0.as_slice())
            .execute(&mut *$tx)
            .await?;
            let (rc_der, last_counter, entries, head): (Vec<u8>, i64, i64, Vec<u8>) =
                sqlx::query_as(
                    "UPDATE cards SET entries = entries WHERE card_id = $1 \
                     RETURNING rc_der, last_counter, entries, head",
                )
                .bind(card)
                .fetch_one(&mut *$tx)
                .await?;
            if rc_der != r.rc_der {
                return Ok::<ReceiptOutcome, StoreError>(ReceiptOutcome::RcMismatch);
            }
            let repeated: Option<(i64, i64, Vec<u8>)> = sqlx::query_as(
                "SELECT seq, counter, entry_der FROM ledger_entries \
                 WHERE card_id = $1 AND receipt_digest = $2",
            )
            .bind(card)
            .bind(receipt_digest.0.as_slice())
            .fetch_optional(&mut *$tx)
            .await?;
            if let Some(row) = repeated {
                return Ok(ReceiptOutcome::Repeated(ledger_from_row(row)?));
            }
            if entries > 0 && counter <= last_counter {
                return Ok(ReceiptOutcome::CounterNotIncreasing {
                    last: from_db("last counter", last_counter)?,
                });
            }
            match &r.change {
                ViewChange::Stored(item) => {
                    sqlx::query(
                        "INSERT INTO card_items \
                         (card_id, item_id, version, size, data_digest, policy) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (card_id, item_id) DO UPDATE SET \
                         version = excluded.version, size = excluded.size, \
                         data_digest = excluded.data_digest, policy = excluded.policy",
                    )
                    .bind(card)
                    .bind(item.item_id.as_bytes())
                    .bind(i64::from(item.version))
                    .bind(i64::from(item.size))
                    .bind(item.data_digest.0.as_slice())
                    .bind(i64::from(item.policy.bits()))
                    .execute(&mut *$tx)
                    .await?;
                }
                ViewChange::Deleted(item_id) => {
                    sqlx::query("DELETE FROM card_items WHERE card_id = $1 AND item_id = $2")
                        .bind(card)
                        .bind(item_id.as_bytes())
                        .execute(&mut *$tx)
                        .await?;
                }
            }
            let view_rows: Vec<ViewRow> = sqlx::query_as(
                "SELECT item_id, version, size, data_digest, policy FROM card_items \
                 WHERE card_id = $1 ORDER BY item_id",
            )
            .bind(card)
            .fetch_all(&mut *$tx)
            .await?;
            let view = view_rows
                .into_iter()
                .map(view_from_row)
                .collect::<Result<Vec<_>, _>>()?;
            let seq = from_db("ledger entries", entries)?;
            let entry_der = signer.sign(seq, digest_from_db("ledger head", head)?, &view)?;
            sqlx::query(
                "INSERT INTO ledger_entries \
                 (card_id, seq, counter, receipt_digest, entry_der, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(card)
            .bind(entries)
            .bind(counter)
            .bind(receipt_digest.0.as_slice())
            .bind(entry_der.as_slice())
            .bind(recorded_at)
            .execute(&mut *$tx)
            .await?;
            sqlx::query(
                "UPDATE cards SET last_counter = $2, entries = entries + 1, head = $3 \
                 WHERE card_id = $1",
            )
            .bind(card)
            .bind(counter)
            .bind(crypto::sha256(&entry_der).0.as_slice())
            .execute(&mut *$tx)
            .await?;
            Ok(ReceiptOutcome::Recorded(LedgerRecord {
                seq,
                counter: r.counter,
                entry_der,
            }))
        }
        .await
    };
}
pub(super) use append_receipt;

#[async_trait]
impl Store for SqlStore {
    async fn publish_item(
        &self,
        item: &ItemRecord,
        data: &[u8],
    ) -> Result<PublishOutcome, StoreError> {
        let version = i64::from(item.version);
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO items \
                 (item_id, version, size, data_digest, policy, data, published_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            )
            .bind(item.item_id.as_bytes())
            .bind(version)
            .bind(i64::from(item.size))
            .bind(item.data_digest.0.as_slice())
            .bind(i64::from(item.policy.bits()))
            .bind(data)
            .bind(to_db("published_at", item.published_at.0)?)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            return Ok(PublishOutcome::Published);
        }
        let existing =
            self.item(&item.item_id, Some(item.version))
                .await?
                .ok_or(StoreError::Corrupt {
                    what: "item that conflicted on insert",
                    value: hex::encode(item.item_id.as_bytes()),
                })?;
        if existing.data_digest == item.data_digest
            && existing.size == item.size
            && existing.policy == item.policy
        {
            Ok(PublishOutcome::AlreadyPublished { existing })
        } else {
            Ok(PublishOutcome::Conflict { existing })
        }
    }

    async fn item(
        &self,
        item_id: &ItemId,
        version: Option<u32>,
    ) -> Result<Option<ItemRecord>, StoreError> {
        let sql = match version {
            Some(_) => {
                format!("SELECT {ITEM_COLUMNS} FROM items WHERE item_id = $1 AND version = $2")
            }
            None => format!(
                "SELECT {ITEM_COLUMNS} FROM items WHERE item_id = $1 ORDER BY version DESC LIMIT 1"
            ),
        };
        let row: Option<ItemRow> = on_pool!(&self.db, |pool| {
            let mut query = sqlx::query_as(&sql).bind(item_id.as_bytes());
            if let Some(version) = version {
                query = query.bind(i64::from(version));
            }
            query.fetch_optional(pool).await?
        });
        row.map(item_from_row).transpose()
    }

    async fn items(&self) -> Result<Vec<ItemRecord>, StoreError> {
        let sql = format!("SELECT {ITEM_COLUMNS} FROM items ORDER BY item_id, version");
        let rows: Vec<ItemRow> = on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(item_from_row).collect()
    }

    async fn item_data(
        &self,
        item_id: &ItemId,
        version: u32,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_pool!(&self.db, |pool| {
            sqlx::query_scalar("SELECT data FROM items WHERE item_id = $1 AND version = $2")
                .bind(item_id.as_bytes())
                .bind(i64::from(version))
                .fetch_optional(pool)
                .await?
        }))
    }

    async fn insert_consent(&self, c: &ConsentRecord) -> Result<bool, StoreError> {
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(&format!(
                "INSERT INTO consents ({CONSENT_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
            ))
            .bind(c.consent_digest.0.as_slice())
            .bind(c.kind.as_str())
            .bind(c.card_id.0.as_slice())
            .bind(c.item_id.as_bytes())
            .bind(i64::from(c.version))
            .bind(c.sdi_digest.0.as_slice())
            .bind(c.sdi_der.as_slice())
            .bind(c.signed_der.as_slice())
            .bind(to_db("created_at", c.created_at.0)?)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    async fn consent_for_sdi(
        &self,
        card_id: &CardId,
        sdi_digest: &Digest,
    ) -> Result<Option<ConsentRecord>, StoreError> {
        let sql = format!(
            "SELECT {CONSENT_COLUMNS} FROM consents WHERE card_id = $1 AND sdi_digest = $2 \
             ORDER BY created_at LIMIT 1"
        );
        let row: Option<ConsentRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(card_id.0.as_slice())
                .bind(sdi_digest.0.as_slice())
                .fetch_optional(pool)
                .await?
        });
        row.map(consent_from_row).transpose()
    }

    async fn has_consent_for_item(
        &self,
        card_id: &CardId,
        item_id: &ItemId,
        version: u32,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(
                "SELECT version FROM consents WHERE card_id = $1 AND item_id = $2 AND version = $3 \
                 LIMIT 1",
            )
            .bind(card_id.0.as_slice())
            .bind(item_id.as_bytes())
            .bind(i64::from(version))
            .fetch_optional(pool)
            .await?
        });
        Ok(found.is_some())
    }

    async fn record_receipt(
        &self,
        r: &NewReceipt,
        signer: &dyn EntrySigner,
    ) -> Result<ReceiptOutcome, StoreError> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let outcome = append_receipt!(tx, r, signer)?;
            match outcome {
                ReceiptOutcome::Recorded(_) => tx.commit().await?,
                _ => tx.rollback().await?,
            }
            Ok(outcome)
        })
    }

    async fn card_rc(&self, card_id: &CardId) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(on_pool!(&self.db, |pool| {
            sqlx::query_scalar("SELECT rc_der FROM cards WHERE card_id = $1")
                .bind(card_id.0.as_slice())
                .fetch_optional(pool)
                .await?
        }))
    }

    async fn contents(&self, card_id: &CardId) -> Result<Vec<ViewItem>, StoreError> {
        let rows: Vec<ViewRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT item_id, version, size, data_digest, policy FROM card_items \
                 WHERE card_id = $1 ORDER BY item_id",
            )
            .bind(card_id.0.as_slice())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(view_from_row).collect()
    }

    async fn ledger(&self, card_id: &CardId) -> Result<Vec<LedgerRecord>, StoreError> {
        let rows: Vec<(i64, i64, Vec<u8>)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT seq, counter, entry_der FROM ledger_entries WHERE card_id = $1 \
                 ORDER BY seq",
            )
            .bind(card_id.0.as_slice())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(ledger_from_row).collect()
    }

    async fn members(&self, item_id: &ItemId) -> Result<Vec<(CardId, u32)>, StoreError> {
        let rows: Vec<(Vec<u8>, i64)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT card_id, version FROM card_items WHERE item_id = $1 ORDER BY card_id",
            )
            .bind(item_id.as_bytes())
            .fetch_all(pool)
            .await?
        });
        rows.into_iter()
            .map(|(card, version)| Ok((card_id_from_db(card)?, u32_from_db("version", version)?)))
            .collect()
    }

    async fn insert_delegation(&self, d: &DelegationRecord) -> Result<bool, StoreError> {
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(&format!(
                "INSERT INTO delegations ({DELEGATION_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING"
            ))
            .bind(d.digest.0.as_slice())
            .bind(d.issuer.as_str())
            .bind(d.card_id.as_ref().map(|c| c.0.to_vec()))
            .bind(to_db("not_after", d.not_after.0)?)
            .bind(d.delegation_der.as_slice())
            .bind(to_db("stored_at", d.stored_at.0)?)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(inserted == 1)
    }

    async fn delegations(&self) -> Result<Vec<DelegationRecord>, StoreError> {
        let sql = format!(
            "SELECT {DELEGATION_COLUMNS} FROM delegations ORDER BY stored_at, delegation_digest"
        );
        let rows: Vec<DelegationRow> = on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(delegation_from_row).collect()
    }

    async fn delegations_for_card(
        &self,
        card_id: &CardId,
        now: UnixTime,
    ) -> Result<Vec<DelegationRecord>, StoreError> {
        // `card_id IS NULL` orders false (the card's own) before true in both dialects.
        let sql = format!(
            "SELECT {DELEGATION_COLUMNS} FROM delegations \
             WHERE (card_id = $1 OR card_id IS NULL) AND not_after >= $2 \
             ORDER BY card_id IS NULL, not_after DESC, delegation_digest"
        );
        let now = to_db("now", now.0)?;
        let rows: Vec<DelegationRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(card_id.0.as_slice())
                .bind(now)
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(delegation_from_row).collect()
    }

    async fn registrar_sdci(
        &self,
        sdi_digest: &Digest,
    ) -> Result<Option<RegistrarSdciRecord>, StoreError> {
        let sql =
            format!("SELECT {REGISTRAR_SDCI_COLUMNS} FROM registrar_sdcis WHERE sdi_digest = $1");
        let row: Option<RegistrarSdciRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(sdi_digest.0.as_slice())
                .fetch_optional(pool)
                .await?
        });
        row.map(registrar_sdci_from_row).transpose()
    }

    async fn put_registrar_sdci(&self, r: &RegistrarSdciRecord) -> Result<(), StoreError> {
        on_pool!(&self.db, |pool| {
            sqlx::query(&format!(
                "INSERT INTO registrar_sdcis ({REGISTRAR_SDCI_COLUMNS}) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (sdi_digest) DO UPDATE SET registrar = excluded.registrar, \
                 sdci_der = excluded.sdci_der, obtained_at = excluded.obtained_at"
            ))
            .bind(r.sdi_digest.0.as_slice())
            .bind(r.registrar.as_str())
            .bind(r.sdci_der.as_slice())
            .bind(to_db("obtained_at", r.obtained_at.0)?)
            .execute(pool)
            .await?;
        });
        Ok(())
    }
}
