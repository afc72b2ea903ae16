//! [`UnixTime`] to and from X.509 `Time` (RFC 5280 §4.1.2.5): UTCTime for dates before 2050,
//! GeneralizedTime from 2050 on, both to the second with `Z`.

use std::time::Duration;

use der::asn1::{GeneralizedTime, UtcTime};
use x509_cert::time::Time;

use crate::{PkiError, UnixTime};

/// 2050-01-01T00:00:00Z: from here on RFC 5280 §4.1.2.5 requires GeneralizedTime.
pub(crate) const GENERALIZED_TIME_FROM: u64 = 2_524_608_000;

/// The RFC 5280 encoding of `t`; fails after 9999-12-31T23:59:59Z.
pub(crate) fn encode_time(t: UnixTime) -> Result<Time, PkiError> {
    let since_epoch = Duration::from_secs(t.0);
    let encoded = if t.0 < GENERALIZED_TIME_FROM {
        UtcTime::from_unix_duration(since_epoch).map(Time::UtcTime)
    } else {
        GeneralizedTime::from_unix_duration(since_epoch).map(Time::GeneralTime)
    };
    encoded.map_err(|_| PkiError::Encoding {
        what: "a time after year 9999",
    })
}

/// The instant `t` names; refuses a GeneralizedTime before 2050 (RFC 5280 says UTCTime there,
/// and DER has one encoding per value).
pub(crate) fn decode_time(t: &Time) -> Result<UnixTime, PkiError> {
    match t {
        Time::UtcTime(u) => Ok(UnixTime(u.to_unix_duration().as_secs())),
        Time::GeneralTime(g) => {
            let secs = g.to_unix_duration().as_secs();
            if secs < GENERALIZED_TIME_FROM {
                Err(PkiError::malformed(
                    "GeneralizedTime before 2050 (RFC 5280 requires UTCTime)",
                ))
            } else {
                Ok(UnixTime(secs))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switches_to_generalized_time_in_2050() {
        assert!(matches!(
            encode_time(UnixTime(GENERALIZED_TIME_FROM - 1)).unwrap(),
            Time::UtcTime(_)
        ));
        assert!(matches!(
            encode_time(UnixTime(GENERALIZED_TIME_FROM)).unwrap(),
            Time::GeneralTime(_)
        ));
        for t in [
            0,
            1_800_000_000,
            GENERALIZED_TIME_FROM - 1,
            GENERALIZED_TIME_FROM,
            253_402_300_799,
        ] {
            assert_eq!(
                decode_time(&encode_time(UnixTime(t)).unwrap()).unwrap(),
                UnixTime(t)
            );
        }
        assert!(encode_time(UnixTime(253_402_300_800)).is_err());
        assert!(encode_time(UnixTime(u64::MAX)).is_err());
    }

    #[test]
    fn refuses_generalized_time_before_2050() {
        let g = GeneralizedTime::from_unix_duration(Duration::from_secs(1_800_000_000)).unwrap();
        assert!(decode_time(&Time::GeneralTime(g)).is_err());
    }
}
