//! [`Store`] on SQLite and PostgreSQL with one set of SQL: every statement here is valid in
//! both dialects (`$n` parameters, `RETURNING`, `ON CONFLICT DO NOTHING`), so one body serves
//! both pools (`server_kit::on_pool!` expands it once per backend, each type-checked against
//! its driver).
//! Only the migrations differ (BLOB vs BYTEA).
//!
//! Concurrency: a writer's first statement updates a single-row counter (`serial_counter`,
//! `crl_head`). On PostgreSQL that takes the row lock, so concurrent writers queue and each
//! sees the others' committed rows when it proceeds (READ COMMITTED re-reads per statement);
//! on SQLite the first write takes the database's write lock before anything is read, so a
//! transaction never works from a stale snapshot. Hence CRL numbers are strictly increasing,
//! never reused, and each CRL covers every revocation committed before it.

use async_trait::async_trait;
use crypto::Digest;
use pki::{PartyId, Role, UnixTime};
use server_kit::{on_pool, Db, MigrationSet};
use sqlx::Row;

use super::{
    CertificateRecord, Certification, CrlRecord, CrlSigner, Identity, Revocation, RevocationRecord,
    RevokeOutcome, Store, StoreError,
};
use crate::service::{RegistrarRole, RevocationReason};

/// The registrar's migrations, applied by [`Db::migrate`].
pub const MIGRATIONS: MigrationSet = MigrationSet {
    component: "registrar",
    sqlite: &[
        server_kit::Migration {
            version: 1,
            description: "registrar",
            sql: include_str!("../../migrations/sqlite/0001_registrar.sql"),
        },
        server_kit::Migration {
            version: 2,
            description: "certifications",
            sql: include_str!("../../migrations/sqlite/0002_certifications.sql"),
        },
    ],
    postgres: &[
        server_kit::Migration {
            version: 1,
            description: "registrar",
            sql: include_str!("../../migrations/postgres/0001_registrar.sql"),
        },
        server_kit::Migration {
            version: 2,
            description: "certifications",
            sql: include_str!("../../migrations/postgres/0002_certifications.sql"),
        },
    ],
};

/// The registrar's store on an open, migrated [`Db`].
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: Db,
}

impl SqlStore {
    /// Applies the registrar's migrations (and server-kit's) and returns the store.
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

fn time_from_db(what: &'static str, value: i64) -> Result<UnixTime, StoreError> {
    from_db(what, value).map(UnixTime)
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::IssuerRegistrar => "issuer_registrar",
        Role::DataRegistrar => "data_registrar",
        Role::Issuer => "issuer",
        Role::Provider => "provider",
        Role::Card => "card",
    }
}

fn role_from_text(text: &str) -> Result<Role, StoreError> {
    match text {
        "issuer" => Ok(Role::Issuer),
        "provider" => Ok(Role::Provider),
        other => Err(StoreError::Corrupt {
            what: "certificate role",
            value: other.to_string(),
        }),
    }
}

fn party_from_db(what: &'static str, text: String) -> Result<PartyId, StoreError> {
    PartyId::new(&text).map_err(|_| StoreError::Corrupt { what, value: text })
}

fn reason_from_db(text: String) -> Result<RevocationReason, StoreError> {
    RevocationReason::parse(&text).ok_or(StoreError::Corrupt {
        what: "revocation reason",
        value: text,
    })
}

const CERTIFICATE_COLUMNS: &str = "c.serial, c.subject, c.role, c.not_before, c.not_after, \
     c.issued_at, c.der, r.reason, r.revoked_at \
     FROM certificates c LEFT JOIN revocations r ON r.serial = c.serial";

/// Reads a row selected with [`CERTIFICATE_COLUMNS`].
fn certificate_from_row<R: Row>(row: &R) -> Result<CertificateRecord, StoreError>
where
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
    for<'a> Vec<u8>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
{
    let revocation = match (
        row.try_get::<Option<String>, _>("reason")?,
        row.try_get::<Option<i64>, _>("revoked_at")?,
    ) {
        (Some(reason), Some(at)) => Some(RevocationRecord {
            reason: reason_from_db(reason)?,
            revoked_at: time_from_db("revocation time", at)?,
        }),
        _ => None,
    };
    Ok(CertificateRecord {
        serial: from_db("serial", row.try_get("serial")?)?,
        subject: party_from_db("subject", row.try_get("subject")?)?,
        role: role_from_text(&row.try_get::<String, _>("role")?)?,
        not_before: time_from_db("not_before", row.try_get("not_before")?)?,
        not_after: time_from_db("not_after", row.try_get("not_after")?)?,
        issued_at: time_from_db("issued_at", row.try_get("issued_at")?)?,
        der: row.try_get("der")?,
        revocation,
    })
}

fn crl_from_columns(
    number: i64,
    this_update: i64,
    next_update: i64,
    der: Vec<u8>,
) -> Result<CrlRecord, StoreError> {
    Ok(CrlRecord {
        number: from_db("CRL number", number)?,
        this_update: time_from_db("CRL thisUpdate", this_update)?,
        next_update: time_from_db("CRL nextUpdate", next_update)?,
        der,
    })
}

fn digest_from_db(what: &'static str, bytes: Vec<u8>) -> Result<Digest, StoreError> {
    <[u8; 32]>::try_from(bytes.as_slice())
        .map(Digest)
        .map_err(|_| StoreError::Corrupt {
            what,
            value: hex::encode(&bytes),
        })
}

fn sign_crl(signer: &dyn CrlSigner, number: u64, revoked: &[u64]) -> Result<CrlRecord, StoreError> {
    let crl = signer
        .sign(number, revoked)
        .map_err(|source| StoreError::CrlSigning { number, source })?;
    if crl.number != number {
        // A signer that numbers CRLs itself would break the uniqueness the lock gives.
        return Err(StoreError::Corrupt {
            what: "CRL number from signer",
            value: crl.number.to_string(),
        });
    }
    Ok(crl)
}

/// Inserts `crl` into `crls` within the transaction `$tx`.
macro_rules! insert_crl {
    ($tx:expr, $crl:expr) => {
        sqlx::query(
            "INSERT INTO crls (number, this_update, next_update, der) VALUES ($1, $2, $3, $4)",
        )
        .bind(to_db("CRL number", $crl.number)?)
        .bind(to_db("CRL thisUpdate", $crl.this_update.0)?)
        .bind(to_db("CRL nextUpdate", $crl.next_update.0)?)
        .bind(&$crl.der)
        .execute(&mut *$tx)
        .await
    };
}

/// Every revoked serial, ascending, as seen within the transaction `$tx`.
macro_rules! revoked_serials {
    ($tx:expr) => {{
        let rows: Vec<i64> = sqlx::query_scalar("SELECT serial FROM revocations ORDER BY serial")
            .fetch_all(&mut *$tx)
            .await?;
        rows.into_iter()
            .map(|s| from_db("revoked serial", s))
            .collect::<Result<Vec<u64>, StoreError>>()
    }};
}

#[async_trait]
impl Store for SqlStore {
    async fn identity(&self) -> Result<Option<Identity>, StoreError> {
        let row: Option<(String, String, Vec<u8>)> = on_pool!(&self.db, |pool| {
            sqlx::query_as("SELECT role, party_id, root_der FROM identity WHERE id = 1")
                .fetch_optional(pool)
                .await?
        });
        row.map(|(role, party_id, root_der)| {
            Ok(Identity {
                role: RegistrarRole::parse(&role).ok_or(StoreError::Corrupt {
                    what: "registrar role",
                    value: role,
                })?,
                party_id: party_from_db("registrar party ID", party_id)?,
                root_der,
            })
        })
        .transpose()
    }

    async fn initialise(
        &self,
        identity: &Identity,
        signer: &dyn CrlSigner,
    ) -> Result<Identity, StoreError> {
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let inserted = sqlx::query(
                "INSERT INTO identity (id, role, party_id, root_der) VALUES (1, $1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(identity.role.as_str())
            .bind(identity.party_id.as_str())
            .bind(&identity.root_der)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if inserted == 1 {
                let number: i64 = sqlx::query_scalar(
                    "UPDATE crl_head SET number = number + 1 WHERE id = 1 RETURNING number",
                )
                .fetch_one(&mut *tx)
                .await?;
                let crl = sign_crl(signer, from_db("CRL number", number)?, &[])?;
                insert_crl!(tx, crl)?;
            }
            tx.commit().await?;
        });
        self.identity().await?.ok_or(StoreError::NotInitialised)
    }

    async fn next_serial(&self) -> Result<u64, StoreError> {
        let serial: Option<i64> = on_pool!(&self.db, |pool| {
            sqlx::query_scalar(
                "UPDATE serial_counter SET last_serial = last_serial + 1 WHERE id = 1 \
                 RETURNING last_serial",
            )
            .fetch_optional(pool)
            .await?
        });
        from_db("serial", serial.ok_or(StoreError::NotInitialised)?)
    }

    async fn insert_certificate(&self, c: &CertificateRecord) -> Result<(), StoreError> {
        let result = on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO certificates \
                 (serial, subject, role, not_before, not_after, issued_at, der) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(to_db("serial", c.serial)?)
            .bind(c.subject.as_str())
            .bind(role_text(c.role))
            .bind(to_db("not_before", c.not_before.0)?)
            .bind(to_db("not_after", c.not_after.0)?)
            .bind(to_db("issued_at", c.issued_at.0)?)
            .bind(&c.der)
            .execute(pool)
            .await
            .map(drop)
        });
        match result {
            Ok(()) => Ok(()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(StoreError::DuplicateSerial { serial: c.serial })
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn certificate(&self, serial: u64) -> Result<Option<CertificateRecord>, StoreError> {
        let Ok(serial) = i64::try_from(serial) else {
            return Ok(None); // larger than any serial we hand out
        };
        let sql = format!("SELECT {CERTIFICATE_COLUMNS} WHERE c.serial = $1");
        on_pool!(&self.db, |pool| {
            sqlx::query(&sql)
                .bind(serial)
                .fetch_optional(pool)
                .await?
                .as_ref()
                .map(certificate_from_row)
                .transpose()
        })
    }

    async fn certificates(
        &self,
        subject: Option<&PartyId>,
    ) -> Result<Vec<CertificateRecord>, StoreError> {
        let sql = match subject {
            Some(_) => {
                format!("SELECT {CERTIFICATE_COLUMNS} WHERE c.subject = $1 ORDER BY c.serial")
            }
            None => format!("SELECT {CERTIFICATE_COLUMNS} ORDER BY c.serial"),
        };
        on_pool!(&self.db, |pool| {
            let mut query = sqlx::query(&sql);
            if let Some(subject) = subject {
                query = query.bind(subject.as_str());
            }
            query
                .fetch_all(pool)
                .await?
                .iter()
                .map(certificate_from_row)
                .collect()
        })
    }

    async fn revoke(
        &self,
        revocation: &Revocation,
        signer: &dyn CrlSigner,
    ) -> Result<RevokeOutcome, StoreError> {
        let Ok(serial) = i64::try_from(revocation.serial) else {
            return Ok(RevokeOutcome::UnknownCertificate);
        };
        on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            // First statement: take the CRL lock and the next number (rolled back if nothing
            // changes).
            let number: Option<i64> = sqlx::query_scalar(
                "UPDATE crl_head SET number = number + 1 WHERE id = 1 AND number > 0 \
                 RETURNING number",
            )
            .fetch_optional(&mut *tx)
            .await?;
            let Some(number) = number else {
                return Err(StoreError::NotInitialised);
            };
            let existing: Option<(i64, Option<String>, Option<i64>)> = sqlx::query_as(
                "SELECT c.serial, r.reason, r.revoked_at FROM certificates c \
                 LEFT JOIN revocations r ON r.serial = c.serial WHERE c.serial = $1",
            )
            .bind(serial)
            .fetch_optional(&mut *tx)
            .await?;
            match existing {
                None => {
                    tx.rollback().await?;
                    return Ok(RevokeOutcome::UnknownCertificate);
                }
                Some((_, Some(reason), Some(at))) => {
                    tx.rollback().await?;
                    return Ok(RevokeOutcome::AlreadyRevoked {
                        existing: RevocationRecord {
                            reason: reason_from_db(reason)?,
                            revoked_at: time_from_db("revocation time", at)?,
                        },
                    });
                }
                Some(_) => {}
            }
            sqlx::query("INSERT INTO revocations (serial, reason, revoked_at) VALUES ($1, $2, $3)")
                .bind(serial)
                .bind(revocation.reason.as_str())
                .bind(to_db("revocation time", revocation.revoked_at.0)?)
                .execute(&mut *tx)
                .await?;
            let revoked = revoked_serials!(tx)?;
            let crl = sign_crl(signer, from_db("CRL number", number)?, &revoked)?;
            insert_crl!(tx, crl)?;
            tx.commit().await?;
            Ok(RevokeOutcome::Revoked { crl })
        })
    }

    async fn current_crl(&self) -> Result<CrlRecord, StoreError> {
        let row: Option<(i64, i64, i64, Vec<u8>)> = on_pool!(&self.db, |pool| {
            sqlx::query_as(
                "SELECT number, this_update, next_update, der FROM crls \
                 ORDER BY number DESC LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        });
        let (number, this_update, next_update, der) = row.ok_or(StoreError::NotInitialised)?;
        crl_from_columns(number, this_update, next_update, der)
    }

    async fn reissue_crl(
        &self,
        replacing: u64,
        signer: &dyn CrlSigner,
    ) -> Result<CrlRecord, StoreError> {
        let replacing_db = to_db("CRL number", replacing)?;
        let reissued = on_pool!(&self.db, |pool| {
            let mut tx = pool.begin().await?;
            let number: Option<i64> = sqlx::query_scalar(
                "UPDATE crl_head SET number = number + 1 WHERE id = 1 AND number = $1 \
                 RETURNING number",
            )
            .bind(replacing_db)
            .fetch_optional(&mut *tx)
            .await?;
            match number {
                None => {
                    tx.rollback().await?;
                    None
                }
                Some(number) => {
                    let revoked = revoked_serials!(tx)?;
                    let crl = sign_crl(signer, from_db("CRL number", number)?, &revoked)?;
                    insert_crl!(tx, crl)?;
                    tx.commit().await?;
                    Some(crl)
                }
            }
        });
        match reissued {
            Some(crl) => Ok(crl),
            None => self.current_crl().await,
        }
    }

    async fn record_certification(&self, c: &Certification) -> Result<(), StoreError> {
        let certified_at = to_db("certification time", c.certified_at.0)?;
        on_pool!(&self.db, |pool| {
            sqlx::query(
                "INSERT INTO certifications (sdi_digest, provider, data_digest, certified_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(c.sdi_digest.0.as_slice())
            .bind(c.provider.as_str())
            .bind(c.data_digest.0.as_slice())
            .bind(certified_at)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    async fn certifications(
        &self,
        provider: Option<&PartyId>,
    ) -> Result<Vec<Certification>, StoreError> {
        const COLUMNS: &str = "SELECT sdi_digest, provider, data_digest, certified_at \
                               FROM certifications";
        let sql = match provider {
            Some(_) => format!("{COLUMNS} WHERE provider = $1 ORDER BY id"),
            None => format!("{COLUMNS} ORDER BY id"),
        };
        let rows: Vec<(Vec<u8>, String, Vec<u8>, i64)> = on_pool!(&self.db, |pool| {
            let mut query = sqlx::query_as(&sql);
            if let Some(provider) = provider {
                query = query.bind(provider.as_str());
            }
            query.fetch_all(pool).await?
        });
        rows.into_iter()
            .map(|(sdi_digest, provider, data_digest, at)| {
                Ok(Certification {
                    sdi_digest: digest_from_db("certified SDI digest", sdi_digest)?,
                    provider: party_from_db("certifying provider", provider)?,
                    data_digest: digest_from_db("certified data digest", data_digest)?,
                    certified_at: time_from_db("certification time", at)?,
                })
            })
            .collect()
    }
}
