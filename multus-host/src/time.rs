//! RFC 3339 timestamps, as Kubernetes and the logs write them (`2026-11-29T09:35:25Z`).

use std::time::SystemTime;

use chrono::{DateTime, SecondsFormat, Utc};

/// `t` in UTC, whole seconds: `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(t: SystemTime) -> String {
    DateTime::<Utc>::from(t).to_rfc3339_opts(SecondsFormat::Secs, true)
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
