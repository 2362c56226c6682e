//! RFC 3339 timestamps, as Kubernetes and the logs write them (`2026-11-29T09:35:25Z`).

use std::time::SystemTime;

use jiff::Timestamp;

/// `t` in UTC, whole seconds: `YYYY-MM-DDTHH:MM:SSZ`. A time outside what RFC 3339 can
/// write (before year -9999 or after 9999) is clamped to the nearest end.
pub fn rfc3339(t: SystemTime) -> String {
    let seconds = Timestamp::try_from(t)
        .map(|ts| ts.as_second())
        .unwrap_or_else(|_| {
            if t < SystemTime::UNIX_EPOCH {
                Timestamp::MIN.as_second()
            } else {
                Timestamp::MAX.as_second()
            }
        });
    Timestamp::from_second(seconds)
        .unwrap_or(Timestamp::UNIX_EPOCH)
        .to_string()
}

/// Now, as [`rfc3339`] writes it.
pub fn rfc3339_now() -> String {
    rfc3339(SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn timestamps_are_utc_whole_seconds() {
        let at = |secs| rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "1970-01-01T00:00:00Z");
        assert_eq!(at(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(at(1_795_944_925), "2026-11-29T09:35:25Z");
        let fraction = UNIX_EPOCH + Duration::from_millis(1_786_000_000_250);
        assert_eq!(rfc3339(fraction), "2026-08-06T07:06:40Z");
        assert_eq!(rfc3339_now().len(), "1970-01-01T00:00:00Z".len());
    }
}
