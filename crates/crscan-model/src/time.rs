//! Instants as RFC 3339 UTC text (<https://www.rfc-editor.org/rfc/rfc3339>), the form
//! every surface writes them in: the API's `google.protobuf.Timestamp` JSON, reports,
//! logs. Only formatting: nothing here reads the clock.

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ`, as the API writes timestamps.
pub fn rfc3339_millis(millis: i64) -> String {
    let seconds = millis.div_euclid(1000);
    let (date, time) = civil(seconds);
    format!("{date}T{time}.{:03}Z", millis.rem_euclid(1000))
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339_seconds(seconds: i64) -> String {
    let (date, time) = civil(seconds);
    format!("{date}T{time}Z")
}

/// The date and the time of day of Unix seconds, in UTC.
fn civil(seconds: i64) -> (String, String) {
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!(
            "{:02}:{:02}:{:02}",
            second_of_day / 3600,
            (second_of_day % 3600) / 60,
            second_of_day % 60
        ),
    )
}

/// Converts days since 1970-01-01 into (year, month, day) in the proleptic Gregorian
/// calendar (the "days from civil" algorithm, inverted).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let shifted = days + 719_468;
    let era = shifted.div_euclid(146_097);
    let day_of_era = shifted.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_612_861_034_435),
            "2021-02-09T08:57:14.435Z"
        );
        assert_eq!(
            rfc3339_millis(1_615_905_242_401),
            "2021-03-16T14:34:02.401Z"
        );
        assert_eq!(rfc3339_seconds(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_seconds(-1), "1969-12-31T23:59:59Z");
    }
}
