//! The database every server keeps its state in: one URL opens either an SQLite file or a
//! PostgreSQL pool (`Db`), and `Db::migrate` brings its schema up to date.
//!
//! Migrations are embedded SQL (`include_str!`), one list per backend, applied by our own
//! runner rather than `sqlx::migrate!` (that macro needs sqlx's `macros` feature and a compile
//! step we do not want on a 2-core CI). The runner records each applied migration in
//! `schema_migrations (component, version)` with the SHA-256 of its SQL and refuses to start
//! when an applied migration's SQL has since changed. All pending migrations of one call run in
//! one transaction; on PostgreSQL that transaction first takes an advisory lock, so several
//! instances starting at once on one database apply each migration exactly once.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Row};

/// How long a connection waits for a lock held by another one before giving up. Writers on
/// SQLite queue on the file lock; PostgreSQL row locks are waited on by the server.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock key migrations take on PostgreSQL ("cwmigr" in ASCII).
const MIGRATION_LOCK_KEY: i64 = 0x6377_6d69_6772;

/// Runs `$body` with `$pool` bound to the SQLite or the PostgreSQL pool of a [`Db`], so one
/// piece of code serves both backends; each expansion is type-checked against its own driver.
/// Write the SQL in the dialect both share: `$1, $2, …` parameters (sqlx binds them by number on
/// SQLite too), `RETURNING`, `ON CONFLICT DO NOTHING`.
///
/// ```text
/// let n: i64 = on_pool!(&db, |pool| sqlx::query_scalar("SELECT $1").bind(1i64).fetch_one(pool).await?);
/// ```
#[macro_export]
macro_rules! on_pool {
    ($db:expr, |$pool:ident| $body:expr) => {
        match $db {
            $crate::Db::Sqlite($pool) => $body,
            $crate::Db::Postgres($pool) => $body,
        }
    };
}

/// An open database: SQLite (one file, WAL, foreign keys on) or PostgreSQL. Cloning is cheap
/// (the pools are reference-counted). Store modules match on it and use the typed pool.
#[derive(Debug, Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What went wrong opening or migrating a database. URLs in messages have their password
/// replaced by `***`.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error(
        "database URL {url:?} is not supported: use sqlite:PATH (a file, created if absent) \
         or postgres://USER@HOST:PORT/DATABASE"
    )]
    UnsupportedUrl { url: String },

    #[error("cannot open database {url}: {source}")]
    Open {
        url: String,
        #[source]
        source: sqlx::Error,
    },

    #[error("migration {component} {version} ({description}) failed: {source}")]
    Migration {
        component: &'static str,
        version: i64,
        description: &'static str,
        #[source]
        source: sqlx::Error,
    },

    /// An applied migration's SQL differs from the one this program embeds: the database was
    /// made by another version of the program and continuing could corrupt it.
    #[error(
        "migration {component} {version} was applied with SQL of SHA-256 {applied}, \
         this program's is {embedded}"
    )]
    MigrationChanged {
        component: &'static str,
        version: i64,
        applied: String,
        embedded: String,
    },

    #[error("an operator named {name:?} already exists")]
    OperatorExists { name: String },

    #[error("{name:?} is not a database name this program creates (1..=63 of [a-z0-9_])")]
    InvalidDatabaseName { name: String },

    #[error("database query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// One schema change: `version` orders the migrations of one component (1, 2, …).
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    pub sql: &'static str,
}

/// The migrations of one component (a server, or server-kit itself) for both backends. The two
/// lists have the same versions and descriptions; only the SQL dialect differs.
#[derive(Debug, Clone, Copy)]
pub struct MigrationSet {
    /// Names the component in `schema_migrations`, so several components share one database.
    pub component: &'static str,
    pub sqlite: &'static [Migration],
    pub postgres: &'static [Migration],
}

/// server-kit's own schema: operators (`operator.rs`) and party request nonces (`party.rs`).
const KIT_MIGRATIONS: MigrationSet = MigrationSet {
    component: "server-kit",
    sqlite: &[
        Migration {
            version: 1,
            description: "operators",
            sql: include_str!("../migrations/sqlite/0001_operators.sql"),
        },
        Migration {
            version: 2,
            description: "party request nonces",
            sql: include_str!("../migrations/sqlite/0002_party_request_nonces.sql"),
        },
    ],
    postgres: &[
        Migration {
            version: 1,
            description: "operators",
            sql: include_str!("../migrations/postgres/0001_operators.sql"),
        },
        Migration {
            version: 2,
            description: "party request nonces",
            sql: include_str!("../migrations/postgres/0002_party_request_nonces.sql"),
        },
    ],
};

const CREATE_SCHEMA_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    component TEXT NOT NULL,
    version BIGINT NOT NULL,
    description TEXT NOT NULL,
    sql_sha256 TEXT NOT NULL,
    PRIMARY KEY (component, version)
)";

impl Db {
    /// Opens `url`: `sqlite:PATH` (also `sqlite://PATH`; the file is created if absent, in WAL
    /// mode with foreign keys enforced) or `postgres://…` / `postgresql://…`. Connects once
    /// before returning, so a wrong URL fails here and not at the first request.
    pub async fn open(url: &str) -> Result<Db, DbError> {
        let open_error = |source| DbError::Open {
            url: redact_url(url),
            source,
        };
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() || path.starts_with(':') {
                // `sqlite::memory:` would give every pooled connection its own empty database.
                return Err(DbError::UnsupportedUrl {
                    url: redact_url(url),
                });
            }
            let options = SqliteConnectOptions::new()
                .filename(path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .foreign_keys(true)
                .busy_timeout(BUSY_TIMEOUT);
            let pool = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(options)
                .await
                .map_err(open_error)?;
            Ok(Db::Sqlite(pool))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let options = PgConnectOptions::from_str(url).map_err(open_error)?;
            // One direct connection first: the pool would retry a refused connection until
            // its acquire timeout, hiding a wrong URL behind a long wait.
            let probe = sqlx::PgConnection::connect_with(&options)
                .await
                .map_err(open_error)?;
            let _ = probe.close().await;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(BUSY_TIMEOUT)
                .connect_with(options)
                .await
                .map_err(open_error)?;
            Ok(Db::Postgres(pool))
        } else {
            Err(DbError::UnsupportedUrl {
                url: redact_url(url),
            })
        }
    }

    /// `"sqlite"` or `"postgres"`: for logs and health output.
    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    /// A trivial query: is the database answering?
    pub async fn ping(&self) -> Result<(), DbError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Applies server-kit's own migrations and then `server`'s, those not yet applied, in one
    /// transaction. Safe to call from several instances at once.
    pub async fn migrate(&self, server: &MigrationSet) -> Result<(), DbError> {
        let sets = [&KIT_MIGRATIONS, server];
        match self {
            Db::Sqlite(pool) => migrate_sqlite(pool, &sets).await,
            Db::Postgres(pool) => migrate_postgres(pool, &sets).await,
        }
    }

    /// Closes the pool, waiting for connections in use to be returned.
    pub async fn close(&self) {
        on_pool!(self, |pool| pool.close().await)
    }
}

/// What `schema_migrations` says about one migration, checked against what we embed.
fn check_applied(
    set: &MigrationSet,
    migration: &Migration,
    applied: Option<String>,
) -> Result<bool, DbError> {
    let embedded = sql_digest(migration.sql);
    match applied {
        None => Ok(false),
        Some(applied) if applied == embedded => Ok(true),
        Some(applied) => Err(DbError::MigrationChanged {
            component: set.component,
            version: migration.version,
            applied,
            embedded,
        }),
    }
}

fn migration_error(set: &MigrationSet, migration: &Migration, source: sqlx::Error) -> DbError {
    DbError::Migration {
        component: set.component,
        version: migration.version,
        description: migration.description,
        source,
    }
}

async fn migrate_sqlite(pool: &SqlitePool, sets: &[&MigrationSet]) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    // BEGIN IMMEDIATE takes the write lock up front: another process migrating the same file
    // waits (busy timeout) instead of failing half-way.
    sqlx::raw_sql("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = async {
        sqlx::raw_sql(CREATE_SCHEMA_MIGRATIONS)
            .execute(&mut *conn)
            .await?;
        for set in sets {
            for migration in set.sqlite {
                let applied: Option<String> = sqlx::query(
                    "SELECT sql_sha256 FROM schema_migrations WHERE component = ? AND version = ?",
                )
                .bind(set.component)
                .bind(migration.version)
                .fetch_optional(&mut *conn)
                .await?
                .map(|row| row.get(0));
                if check_applied(set, migration, applied)? {
                    continue;
                }
                sqlx::raw_sql(migration.sql)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| migration_error(set, migration, e))?;
                sqlx::query(
                    "INSERT INTO schema_migrations (component, version, description, sql_sha256) \
                     VALUES (?, ?, ?, ?)",
                )
                .bind(set.component)
                .bind(migration.version)
                .bind(migration.description)
                .bind(sql_digest(migration.sql))
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok::<(), DbError>(())
    }
    .await;
    match result {
        Ok(()) => {
            sqlx::raw_sql("COMMIT").execute(&mut *conn).await?;
            Ok(())
        }
        Err(e) => {
            // The original error matters more than a failed rollback.
            let _ = sqlx::raw_sql("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}

async fn migrate_postgres(pool: &PgPool, sets: &[&MigrationSet]) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *tx)
        .await?;
    sqlx::raw_sql(CREATE_SCHEMA_MIGRATIONS)
        .execute(&mut *tx)
        .await?;
    for set in sets {
        for migration in set.postgres {
            let applied: Option<String> = sqlx::query(
                "SELECT sql_sha256 FROM schema_migrations WHERE component = $1 AND version = $2",
            )
            .bind(set.component)
            .bind(migration.version)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.get(0));
            if check_applied(set, migration, applied)? {
                continue;
            }
            sqlx::raw_sql(migration.sql)
                .execute(&mut *tx)
                .await
                .map_err(|e| migration_error(set, migration, e))?;
            sqlx::query(
                "INSERT INTO schema_migrations (component, version, description, sql_sha256) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(set.component)
            .bind(migration.version)
            .bind(migration.description)
            .bind(sql_digest(migration.sql))
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

fn sql_digest(sql: &str) -> String {
    hex::encode(crypto::sha256(sql.as_bytes()).as_bytes())
}

/// `url` with any password replaced by `***` (and any query string, which may carry one),
/// for messages and logs.
pub fn redact_url(url: &str) -> String {
    let url = match url.split_once('?') {
        Some((base, _query)) => return format!("{}?***", redact_url(base)),
        None => url,
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    // userinfo ends at the last '@' before the path.
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            let user = match userinfo.split_once(':') {
                Some((user, _password)) => format!("{user}:***"),
                None => userinfo.to_string(),
            };
            format!("{scheme}://{user}{}", &rest[at..])
        }
        None => url.to_string(),
    }
}

/// Creates database `name` on the PostgreSQL cluster of `admin_url` (a URL whose user may
/// create databases) and returns the URL of the new database; for deployments that give each
/// party its own database on one cluster (`cardwright bench authorize --postgres`, the tests).
/// `name` must be 1..=63 characters of `[a-z0-9_]`.
pub async fn create_postgres_database(admin_url: &str, name: &str) -> Result<String, DbError> {
    use sqlx::Executor as _;
    let valid = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        return Err(DbError::InvalidDatabaseName {
            name: name.to_string(),
        });
    }
    let open = |source| DbError::Open {
        url: redact_url(admin_url),
        source,
    };
    let mut admin = sqlx::PgConnection::connect(admin_url).await.map_err(open)?;
    admin
        .execute(format!("CREATE DATABASE \"{name}\"").as_str())
        .await?;
    let _ = admin.close().await;
    Ok(with_database(admin_url, name))
}

/// `url` with its database path replaced by `database` (query kept).
pub(crate) fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let (scheme, rest) = base.split_once("://").unwrap_or(("postgres", base));
    let authority = rest.split('/').next().unwrap_or(rest);
    let mut out = format!("{scheme}://{authority}/{database}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords_only() {
        assert_eq!(
            redact_url("postgres://cw:s3cret@127.0.0.1:5432/db"),
            "postgres://cw:***@127.0.0.1:5432/db"
        );
        assert_eq!(
            redact_url("postgres://cw@127.0.0.1:5432/db"),
            "postgres://cw@127.0.0.1:5432/db"
        );
        assert_eq!(redact_url("sqlite:/tmp/x.db"), "sqlite:/tmp/x.db");
        assert_eq!(
            redact_url("postgres://h/db?password=x@y"),
            "postgres://h/db?***"
        );
    }
}
