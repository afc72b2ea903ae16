//! Operator authentication (docs/parties.md, "Authentication"): people at a party's console or
//! CLI hold bearer tokens `cwo_<32 hex>`; the party's database keeps only their SHA-256 in
//! server-kit's `operators` table. A token is valid only on the database that issued it, so
//! an operator of one party cannot act for another. The [`Operator`] extractor guards routes.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sqlx::Row;

use crate::{on_pool, ApiError, Db, DbError};

const TOKEN_PREFIX: &str = "cwo_";
const TOKEN_RANDOM_LEN: usize = 16;

/// An operator's bearer token. `Debug` does not show it; only [`OperatorToken::expose`] does,
/// for the one moment it is handed to the person who will hold it.
#[derive(Clone, PartialEq, Eq)]
pub struct OperatorToken(String);

impl std::fmt::Debug for OperatorToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OperatorToken(cwo_…)")
    }
}

impl OperatorToken {
    /// A fresh token: `cwo_` and 16 random bytes in lowercase hex.
    pub fn generate(rng: &mut dyn crypto::Rng) -> OperatorToken {
        let mut bytes = [0u8; TOKEN_RANDOM_LEN];
        rng.fill(&mut bytes);
        OperatorToken(format!("{TOKEN_PREFIX}{}", hex::encode(bytes)))
    }

    /// Accepts exactly `cwo_` and 32 lowercase hex digits.
    pub fn parse(text: &str) -> Option<OperatorToken> {
        let hex_part = text.strip_prefix(TOKEN_PREFIX)?;
        let well_formed = hex_part.len() == 2 * TOKEN_RANDOM_LEN
            && hex_part
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        well_formed.then(|| OperatorToken(text.to_string()))
    }

    /// The token itself, to show its holder once (never log it).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What the database keeps: the SHA-256 of the token text, in hex.
    fn digest_hex(&self) -> String {
        hex::encode(crypto::sha256(self.0.as_bytes()).as_bytes())
    }
}

/// A row of the `operators` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorRecord {
    pub name: String,
    pub created_at: pki::UnixTime,
    pub disabled_at: Option<pki::UnixTime>,
}

fn record_from(name: String, created_at: i64, disabled_at: Option<i64>) -> OperatorRecord {
    // Times are written by us from u64 seconds; a negative one can only come from a hand edit
    // and reads as 0 rather than failing authentication paths.
    let time = |t: i64| pki::UnixTime(u64::try_from(t).unwrap_or(0));
    OperatorRecord {
        name,
        created_at: time(created_at),
        disabled_at: disabled_at.map(time),
    }
}

/// A time as the databases keep it (seconds; far-future times saturate).
pub(crate) fn to_db_time(t: pki::UnixTime) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

impl Db {
    /// Adds operator `name` and returns its new token (shown once; only its digest is kept).
    pub async fn add_operator(
        &self,
        name: &str,
        now: pki::UnixTime,
        rng: &mut dyn crypto::Rng,
    ) -> Result<OperatorToken, DbError> {
        let token = OperatorToken::generate(rng);
        let digest = token.digest_hex();
        let result = on_pool!(self, |pool| {
            sqlx::query(
                "INSERT INTO operators (name, token_sha256, created_at) VALUES ($1, $2, $3)",
            )
            .bind(name)
            .bind(&digest)
            .bind(to_db_time(now))
            .execute(pool)
            .await
            .map(drop)
        });
        match result {
            Ok(_) => Ok(token),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                Err(DbError::OperatorExists {
                    name: name.to_string(),
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Disables operator `name` from `now` on; its token then gets 403 `forbidden`. Returns
    /// whether such an operator exists.
    pub async fn disable_operator(&self, name: &str, now: pki::UnixTime) -> Result<bool, DbError> {
        let done = on_pool!(self, |pool| {
            sqlx::query(
                "UPDATE operators SET disabled_at = COALESCE(disabled_at, $1) WHERE name = $2",
            )
            .bind(to_db_time(now))
            .bind(name)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(done > 0)
    }

    /// The operator holding `token`, if any (disabled ones included).
    pub async fn operator_by_token(
        &self,
        token: &OperatorToken,
    ) -> Result<Option<OperatorRecord>, DbError> {
        let digest = token.digest_hex();
        let row = on_pool!(self, |pool| {
            sqlx::query(
                "SELECT name, created_at, disabled_at FROM operators WHERE token_sha256 = $1",
            )
            .bind(&digest)
            .fetch_optional(pool)
            .await?
            .map(|r| Ok::<_, sqlx::Error>(record_from(r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        });
        Ok(row.transpose()?)
    }
}

/// An authenticated, enabled operator of this party: put it among a handler's arguments to
/// require `Authorization: Bearer cwo_…`. Missing, malformed or unknown tokens are 401
/// `unauthenticated`; a disabled operator's token is 403 `forbidden`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
}

impl<S> FromRequestParts<S> for Operator
where
    Db: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Operator, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::unauthenticated("an operator token is required: Authorization: Bearer cwo_…")
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .and_then(|value| OperatorToken::parse(value.trim()))
            .ok_or_else(|| {
                ApiError::unauthenticated(
                    "the Authorization header is not \"Bearer cwo_<32 hex digits>\"",
                )
            })?;
        let db = Db::from_ref(state);
        let record = db
            .operator_by_token(&token)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::unauthenticated("the operator token is not known here"))?;
        if record.disabled_at.is_some() {
            return Err(ApiError::forbidden(format!(
                "operator {:?} is disabled",
                record.name
            )));
        }
        Ok(Operator { name: record.name })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_form() {
        let mut rng = crypto::InsecureSeededRng::insecure_seeded_for_tests(1);
        let token = OperatorToken::generate(&mut rng);
        assert!(token.expose().starts_with("cwo_"));
        assert_eq!(token.expose().len(), 36);
        assert_eq!(OperatorToken::parse(token.expose()), Some(token.clone()));
        assert!(!format!("{token:?}").contains(&token.expose()[4..]));
        for bad in [
            "",
            "cwo_",
            "cwx_00112233445566778899aabbccddeeff",
            "cwo_00112233445566778899AABBCCDDEEFF",
            "cwo_00112233445566778899aabbccddeef",
            "cwo_00112233445566778899aabbccddeeff0",
            "cwo_00112233445566778899aabbccddeefg",
        ] {
            assert_eq!(OperatorToken::parse(bad), None, "{bad:?}");
        }
    }
}
