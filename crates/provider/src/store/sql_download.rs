//! [`DownloadStore`] on SQLite and PostgreSQL with one set of SQL (see `sql.rs`). Single-use
//! and idempotency keys are primary keys (`ON CONFLICT DO NOTHING`, then the row that won is
//! read), so instances sharing a database agree: one operation per ID, one grant per SAR,
//! one member per operation. Transactions that read before they write start with a write
//! (SQLite takes its write lock there; see `sql.rs`).

use async_trait::async_trait;
use crypto::Digest;
use pki::{CardId, UnixTime};
use protocol::{LedgerEntry, OperationId, ServiceId};
use server_kit::on_pool;

use super::sql::{
    append_receipt, card_id_from_db, digest_from_db, from_db, item_id_from_db, ledger_from_row,
    party_from_db, policy_from_db, to_db, u32_from_db, view_from_row, ViewRow,
};
use super::{
    DownloadGrantRecord, DownloadRecord, DownloadStage, DownloadStore, EntrySigner, GrantOutcome,
    LedgerRecord, MemberOutcome, MemberRecord, MemberUserRecord, NewDownloadGrant, NewReceipt,
    OpenOutcome, ReceiptOutcome, ServiceOutcome, ServiceRecord, SqlStore, StoreError, TermsOutcome,
    TermsRecord, ViewChange,
};

/// How often publishing terms retries when another instance took the next version first.
const TERMS_RETRIES: usize = 8;

fn operation_id_from_db(bytes: Vec<u8>) -> Result<OperationId, StoreError> {
    <[u8; 16]>::try_from(bytes.as_slice())
        .map(OperationId)
        .map_err(|_| StoreError::Corrupt {
            what: "operation ID",
            value: hex::encode(&bytes),
        })
}

fn service_id_from_db(text: String) -> Result<ServiceId, StoreError> {
    ServiceId::new(&text).map_err(|_| StoreError::Corrupt {
        what: "service ID",
        value: text,
    })
}

type TermsRow = (i64, String, Vec<u8>, i64);
const TERMS_COLUMNS: &str = "version, text, digest, published_at";

fn terms_from_row(
    (version, text, digest, published_at): TermsRow,
) -> Result<TermsRecord, StoreError> {
    Ok(TermsRecord {
        version: u32_from_db("terms version", version)?,
        text,
        digest: digest_from_db("terms digest", digest)?,
        published_at: UnixTime(from_db("published_at", published_at)?),
    })
}

type ServiceRow = (
    String,
    String,
    String,
    String,
    Vec<u8>,
    i64,
    i64,
    Vec<u8>,
    i64,
    String,
    i64,
);
const SERVICE_COLUMNS: &str = "service_id, name, description, issuer, aid, version, size, \
     digest, policy, application_name, created_at";

fn service_from_row(row: ServiceRow) -> Result<ServiceRecord, StoreError> {
    let (
        service_id,
        name,
        description,
        issuer,
        aid,
        version,
        size,
        digest,
        policy,
        application_name,
        created_at,
    ) = row;
    Ok(ServiceRecord {
        service_id: service_id_from_db(service_id)?,
        name,
        description,
        issuer: party_from_db("service issuer", issuer)?,
        aid: item_id_from_db(aid)?,
        version: u32_from_db("version", version)?,
        size: u32_from_db("size", size)?,
        digest: digest_from_db("application digest", digest)?,
        policy: policy_from_db(policy)?,
        application_name,
        created_at: UnixTime(from_db("created_at", created_at)?),
    })
}

type DownloadRow = (
    Vec<u8>,
    Vec<u8>,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
    i64,
    String,
    i64,
);
const DOWNLOAD_COLUMNS: &str = "operation_id, card_id, issuer, service_id, terms_digest, \
     request_der, not_after, state, created_at";

fn download_from_row(row: DownloadRow) -> Result<DownloadRecord, StoreError> {
    let (
        operation_id,
        card_id,
        issuer,
        service_id,
        terms_digest,
        request_der,
        not_after,
        state,
        created_at,
    ) = row;
    Ok(DownloadRecord {
        operation_id: operation_id_from_db(operation_id)?,
        card_id: card_id_from_db(card_id)?,
        issuer: party_from_db("download issuer", issuer)?,
        service_id: service_id_from_db(service_id)?,
        terms_digest: digest_from_db("terms digest", terms_digest)?,
        request_der,
        not_after: UnixTime(from_db("not_after", not_after)?),
        stage: DownloadStage::parse(&state).ok_or(StoreError::Corrupt {
            what: "download state",
            value: state,
        })?,
        created_at: UnixTime(from_db("created_at", created_at)?),
    })
}

type GrantRow = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>, i64, i64);
const GRANT_COLUMNS: &str = "sar_digest, operation_id, sa_digest, sa_der, not_after, granted_at";

fn grant_from_row(row: GrantRow) -> Result<DownloadGrantRecord, StoreError> {
    let (sar_digest, operation_id, sa_digest, sa_der, not_after, granted_at) = row;
    Ok(DownloadGrantRecord {
        sar_digest: digest_from_db("SAR digest", sar_digest)?,
        operation_id: operation_id_from_db(operation_id)?,
        sa_digest: digest_from_db("SA digest", sa_digest)?,
        sa_der,
        not_after: UnixTime(from_db("not_after", not_after)?),
        granted_at: UnixTime(from_db("granted_at", granted_at)?),
    })
}

type MemberRow = (
    Vec<u8>,
    String,
    Vec<u8>,
    String,
    String,
    String,
    String,
    Vec<u8>,
    Vec<u8>,
    i64,
);
const MEMBER_COLUMNS: &str = "operation_id, service_id, card_id, user_id, name, email, state, \
     download_application_der, receipt_der, member_since";

fn member_from_row(row: MemberRow) -> Result<MemberRecord, StoreError> {
    let (
        operation_id,
        service_id,
        card_id,
        user_id,
        name,
        email,
        state,
        download_application_der,
        receipt_der,
        member_since,
    ) = row;
    Ok(MemberRecord {
        operation_id: operation_id_from_db(operation_id)?,
        service_id: service_id_from_db(service_id)?,
        card_id: card_id_from_db(card_id)?,
        user: MemberUserRecord {
            user_id,
            name,
            email,
        },
        state,
        download_application_der,
        receipt_der,
        member_since: UnixTime(from_db("member_since", member_since)?),
    })
}

#[async_trait]
impl DownloadStore for SqlStore {
    async fn publish_terms(
        &self,
        text: &str,
        digest: &Digest,
        now: UnixTime,
    ) -> Result<TermsOutcome, StoreError> {
        let published_at = to_db("published_at", now.0)?;
        for _ in 0..TERMS_RETRIES {
            let latest = self.terms(None).await?;
            let next = match &latest {
                Some(latest) if latest.digest == *digest && latest.text == text => {
                    return Ok(TermsOutcome::Unchanged(latest.clone()));
                }
                Some(latest) => latest
                    .version
                    .checked_add(1)
                    .ok_or(StoreError::OutOfRange {
                        what: "terms version",
                        value: u64::from(latest.version) + 1,
                    })?,
                None => 1,
            };
            let inserted = on_pool!(&self.db, |pool| {
                sqlx::query(&format!(
                    "INSERT INTO terms ({TERMS_COLUMNS}) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT DO NOTHING"
                ))
                .bind(i64::from(next))
                .bind(text)
                .bind(digest.0.as_slice())
                .bind(published_at)
                .execute(pool)
                .await?
                .rows_affected()
            });
            if inserted == 1 {
                return Ok(TermsOutcome::Published(TermsRecord {
                    version: next,
                    text: text.to_string(),
                    digest: *digest,
                    published_at: now,
                }));
            }
            // Another instance published version `next` meanwhile: compare with it again.
        }
        Err(StoreError::Corrupt {
            what: "terms versions (publishing kept losing to other instances)",
            value: TERMS_RETRIES.to_string(),
        })
    }

    async fn terms(&self, version: Option<u32>) -> Result<Option<TermsRecord>, StoreError> {
        let sql = match version {
            Some(_) => format!("SELECT {TERMS_COLUMNS} FROM terms WHERE version = $1"),
            None => format!("SELECT {TERMS_COLUMNS} FROM terms ORDER BY version DESC LIMIT 1"),
        };
        let row: Option<TermsRow> = on_pool!(&self.db, |pool| {
            let mut query = sqlx::query_as(&sql);
            if let Some(version) = version {
                query = query.bind(i64::from(version));
            }
            query.fetch_optional(pool).await?
        });
        row.map(terms_from_row).transpose()
    }

    async fn insert_service(&self, s: &ServiceRecord) -> Result<ServiceOutcome, StoreError> {
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(&format!(
                "INSERT INTO services ({SERVICE_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING"
            ))
            .bind(s.service_id.as_str())
            .bind(&s.name)
            .bind(&s.description)
            .bind(s.issuer.as_str())
            .bind(s.aid.as_bytes())
            .bind(i64::from(s.version))
            .bind(i64::from(s.size))
            .bind(s.digest.0.as_slice())
            .bind(i64::from(s.policy.bits()))
            .bind(&s.application_name)
            .bind(to_db("created_at", s.created_at.0)?)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            return Ok(ServiceOutcome::Added);
        }
        let existing = self
            .service(&s.service_id)
            .await?
            .ok_or(StoreError::Corrupt {
                what: "service that conflicted on insert",
                value: s.service_id.to_string(),
            })?;
        Ok(ServiceOutcome::Exists(existing))
    }

    async fn service(&self, service_id: &ServiceId) -> Result<Option<ServiceRecord>, StoreError> {
        let sql = format!("SELECT {SERVICE_COLUMNS} FROM services WHERE service_id = $1");
        let row: Option<ServiceRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(service_id.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(service_from_row).transpose()
    }

    async fn services(&self) -> Result<Vec<ServiceRecord>, StoreError> {
        let sql = format!("SELECT {SERVICE_COLUMNS} FROM services ORDER BY service_id");
        let rows: Vec<ServiceRow> = on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(service_from_row).collect()
    }

    async fn open_download(&self, d: &DownloadRecord) -> Result<OpenOutcome, StoreError> {
        let inserted = on_pool!(&self.db, |pool| {
            sqlx::query(&format!(
                "INSERT INTO downloads ({DOWNLOAD_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING"
            ))
            .bind(d.operation_id.0.as_slice())
            .bind(d.card_id.0.as_slice())
            .bind(d.issuer.as_str())
            .bind(d.service_id.as_str())
            .bind(d.terms_digest.0.as_slice())
            .bind(d.request_der.as_slice())
            .bind(to_db("not_after", d.not_after.0)?)
            .bind(d.stage.as_str())
            .bind(to_db("created_at", d.created_at.0)?)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if inserted == 1 {
            return Ok(OpenOutcome::Opened);
        }
        let existing = self
            .download(&d.operation_id)
            .await?
            .ok_or(StoreError::Corrupt {
                what: "download that conflicted on insert",
                value: d.operation_id.to_hex(),
            })?;
        Ok(OpenOutcome::Exists(existing))
    }

    async fn download(
        &self,
        operation_id: &OperationId,
    ) -> Result<Option<DownloadRecord>, StoreError> {
        let sql = format!("SELECT {DOWNLOAD_COLUMNS} FROM downloads WHERE operation_id = $1");
        let row: Option<DownloadRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(operation_id.0.as_slice())
                .fetch_optional(pool)
                .await?
        });
        row.map(download_from_row).transpose()
    }

    async fn record_download_grant(
        &self,
        new: &NewDownloadGrant,
    ) -> Result<GrantOutcome, StoreError> {
        let g = &new.grant;
        let c = &new.consent;
        let inserted = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let granted = sqlx::query(&format!(
                "INSERT INTO download_grants ({GRANT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6) \
                 ON CONFLICT DO NOTHING"
            ))
            .bind(g.sar_digest.0.as_slice())
            .bind(g.operation_id.0.as_slice())
            .bind(g.sa_digest.0.as_slice())
            .bind(g.sa_der.as_slice())
            .bind(to_db("not_after", g.not_after.0)?)
            .bind(to_db("granted_at", g.granted_at.0)?)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if granted != 1 {
                tx.rollback().await?;
                None
            } else {
                let consented = sqlx::query(
                    "INSERT INTO consents (consent_digest, kind, card_id, item_id, version, \
                     sdi_digest, sdi_der, signed_der, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                )
                .bind(c.consent_digest.0.as_slice())
                .bind(c.kind.as_str())
                .bind(c.card_id.0.as_slice())
                .bind(c.item_id.as_bytes())
                .bind(i64::from(c.version))
                .bind(c.sdi_digest.0.as_slice())
                .bind(c.sdi_der.as_slice())
                .bind(c.signed_der.as_slice())
                .bind(to_db("created_at", c.created_at.0)?)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if consented != 1 {
                    tx.rollback().await?;
                    Some(false)
                } else {
                    sqlx::query(
                        "UPDATE downloads SET state = $2 WHERE operation_id = $1 AND state = $3",
                    )
                    .bind(g.operation_id.0.as_slice())
                    .bind(DownloadStage::Granted.as_str())
                    .bind(DownloadStage::Requested.as_str())
                    .execute(&mut *tx)
                    .await?;
                    tx.commit().await?;
                    Some(true)
                }
            }
        });
        match inserted {
            Some(true) => Ok(GrantOutcome::Granted),
            Some(false) => Ok(GrantOutcome::SarSpent),
            None => {
                let existing =
                    self.download_grant(&g.sar_digest)
                        .await?
                        .ok_or(StoreError::Corrupt {
                            what: "download grant that conflicted on insert",
                            value: hex::encode(g.sar_digest.0),
                        })?;
                Ok(GrantOutcome::Exists(existing))
            }
        }
    }

    async fn download_grant(
        &self,
        sar_digest: &Digest,
    ) -> Result<Option<DownloadGrantRecord>, StoreError> {
        let sql = format!("SELECT {GRANT_COLUMNS} FROM download_grants WHERE sar_digest = $1");
        let row: Option<GrantRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(sar_digest.0.as_slice())
                .fetch_optional(pool)
                .await?
        });
        row.map(grant_from_row).transpose()
    }

    async fn download_grant_for_sa(
        &self,
        operation_id: &OperationId,
        sa_digest: &Digest,
    ) -> Result<Option<DownloadGrantRecord>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM download_grants \
             WHERE operation_id = $1 AND sa_digest = $2 LIMIT 1"
        );
        let row: Option<GrantRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(operation_id.0.as_slice())
                .bind(sa_digest.0.as_slice())
                .fetch_optional(pool)
                .await?
        });
        row.map(grant_from_row).transpose()
    }

    async fn record_member(
        &self,
        r: &NewReceipt,
        signer: &dyn EntrySigner,
        m: &MemberRecord,
    ) -> Result<MemberOutcome, StoreError> {
        let member_since = to_db("member_since", m.member_since.0)?;
        let done: Option<LedgerRecord> = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // The ledger step writes first (the card's row), so on SQLite the transaction
            // holds the write lock before it reads anything.
            let entry = match append_receipt!(tx, r, signer)? {
                ReceiptOutcome::Recorded(entry) | ReceiptOutcome::Repeated(entry) => entry,
                refused => {
                    tx.rollback().await?;
                    return Ok(MemberOutcome::ReceiptRefused(refused));
                }
            };
            let inserted = sqlx::query(&format!(
                "INSERT INTO members ({MEMBER_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING"
            ))
            .bind(m.operation_id.0.as_slice())
            .bind(m.service_id.as_str())
            .bind(m.card_id.0.as_slice())
            .bind(&m.user.user_id)
            .bind(&m.user.name)
            .bind(&m.user.email)
            .bind(&m.state)
            .bind(m.download_application_der.as_slice())
            .bind(m.receipt_der.as_slice())
            .bind(member_since)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted != 1 {
                // Recorded by another delivery: its transaction recorded the receipt too.
                tx.rollback().await?;
                Ok::<_, StoreError>(None)
            } else {
                sqlx::query("UPDATE downloads SET state = $2 WHERE operation_id = $1")
                    .bind(m.operation_id.0.as_slice())
                    .bind(DownloadStage::Member.as_str())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(Some(entry))
            }
        })?;
        match done {
            Some(entry) => Ok(MemberOutcome::Recorded {
                member: m.clone(),
                entry,
            }),
            None => {
                let existing = self
                    .member(&m.operation_id)
                    .await?
                    .ok_or(StoreError::Corrupt {
                        what: "member that conflicted on insert",
                        value: m.operation_id.to_hex(),
                    })?;
                Ok(MemberOutcome::Repeated(existing))
            }
        }
    }

    async fn member(&self, operation_id: &OperationId) -> Result<Option<MemberRecord>, StoreError> {
        let sql = format!("SELECT {MEMBER_COLUMNS} FROM members WHERE operation_id = $1");
        let row: Option<MemberRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(operation_id.0.as_slice())
                .fetch_optional(pool)
                .await?
        });
        row.map(member_from_row).transpose()
    }

    async fn is_member(
        &self,
        card_id: &CardId,
        service_id: &ServiceId,
    ) -> Result<bool, StoreError> {
        let found: Option<i64> = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(
                "SELECT member_since FROM members WHERE card_id = $1 AND service_id = $2 LIMIT 1",
            )
            .bind(card_id.0.as_slice())
            .bind(service_id.as_str())
            .fetch_optional(pool)
            .await?
        });
        Ok(found.is_some())
    }

    async fn members_of(&self, service_id: &ServiceId) -> Result<Vec<MemberRecord>, StoreError> {
        let sql = format!(
            "SELECT {MEMBER_COLUMNS} FROM members WHERE service_id = $1 \
             ORDER BY member_since, operation_id"
        );
        let rows: Vec<MemberRow> = on_pool!(&self.db, |pool| {
            sqlx::query_as(&sql)
                .bind(service_id.as_str())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(member_from_row).collect()
    }

    async fn downloads(&self) -> Result<Vec<DownloadRecord>, StoreError> {
        let sql = format!(
            "SELECT {DOWNLOAD_COLUMNS} FROM downloads ORDER BY created_at DESC, operation_id"
        );
        let rows: Vec<DownloadRow> = on_pool!(&self.db, |pool| sqlx::query_as(&sql)
            .fetch_all(pool)
            .await?);
        rows.into_iter().map(download_from_row).collect()
    }
}
