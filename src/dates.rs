//! Day arguments (`2024-06-18`, `today`, `yesterday`, `-7d`) and the day ↔ Arrow Date32 mapping.

use chrono::{Datelike, Days, NaiveDate};

pub const ACCEPTED: &str =
    "use YYYY-MM-DD, today, yesterday, or -Nd for N days before today (e.g. -7d)";

/// Parses a day argument relative to `today` (already taken in the configured timezone): a day
/// of a four-digit year, as partition folders name them (windows reach a month around it).
pub fn parse_day(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    let day = match text.trim() {
        "today" => Some(today),
        "yesterday" => today.checked_sub_days(Days::new(1)),
        t if t.starts_with('-') && t.ends_with('d') => {
            let n: u64 = t[1..t.len() - 1].parse().ok()?;
            today.checked_sub_days(Days::new(n))
        }
        t => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .filter(|_| t.len() == 10),
    };
    day.filter(|d| (1..=9999).contains(&d.year()))
}

/// An IANA time zone by its name in any case (`utc`, `europe/berlin`), as people type them.
pub fn timezone(name: &str) -> Option<chrono_tz::Tz> {
    let name = name.trim();
    name.parse().ok().or_else(|| {
        (chrono_tz::TZ_VARIANTS.iter().copied()).find(|tz| tz.name().eq_ignore_ascii_case(name))
    })
}

/// A `--from`/`--to` flag's day, if given, or a usage error that shows the accepted forms.
pub fn day_arg(
    flag: &str,
    value: Option<&str>,
    today: NaiveDate,
) -> crate::Result<Option<NaiveDate>> {
    value
        .map(|v| {
            parse_day(v, today)
                .ok_or_else(|| crate::Error::usage(format!("bad {flag} '{v}'"), ACCEPTED))
        })
        .transpose()
}

/// A usage error unless `from` comes no later than `to`.
pub fn check_order(from: NaiveDate, to: NaiveDate) -> crate::Result<()> {
    if from > to {
        return Err(crate::Error::usage(
            format!("--from {from} is after --to {to}"),
            "give the earlier day as --from",
        ));
    }
    Ok(())
}

/// Today in `tz`.
pub fn today(tz: chrono_tz::Tz) -> NaiveDate {
    chrono::Utc::now().with_timezone(&tz).date_naive()
}

/// Days since 1970-01-01, as Arrow's Date32 stores them.
pub fn to_date32(day: NaiveDate) -> i32 {
    (day - NaiveDate::default()).num_days() as i32
}

/// The day of a Date32 value (days since 1970-01-01), if chrono can hold it.
pub fn from_date32(days: i32) -> Option<NaiveDate> {
    NaiveDate::default().checked_add_signed(chrono::Duration::days(days.into()))
}

/// Every day from `from` to `to`, both included.
pub fn days(from: NaiveDate, to: NaiveDate) -> impl Iterator<Item = NaiveDate> {
    from.iter_days().take_while(move |d| *d <= to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_zones_in_any_case() {
        assert_eq!(timezone("UTC"), Some(chrono_tz::Tz::UTC));
        assert_eq!(timezone("utc"), Some(chrono_tz::Tz::UTC));
        assert_eq!(
            timezone(" europe/berlin "),
            Some(chrono_tz::Tz::Europe__Berlin)
        );
        assert_eq!(timezone("Nowhere/City"), None);
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn accepted_forms() {
        let today = day("2024-03-01");
        assert_eq!(parse_day("2024-06-18", today), Some(day("2024-06-18")));
        assert_eq!(parse_day("today", today), Some(today));
        assert_eq!(parse_day("yesterday", today), Some(day("2024-02-29")));
        assert_eq!(parse_day("-7d", today), Some(day("2024-02-23")));
        assert_eq!(parse_day("-0d", today), Some(today));
    }

    #[test]
    fn rejected_forms() {
        let today = day("2024-03-01");
        for bad in [
            "",
            "2024-6-18",
            "2024-13-01",
            "2024-02-30",
            "-d",
            "-7",
            "7d",
            "-x7d",
            "tomorrow",
            // Before year 1: a month's window before it panicked.
            "-738946d",
            "-96486086d",
        ] {
            assert_eq!(parse_day(bad, today), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_parses_or_fails(text in "\\PC*", offset in 0i64..200_000) {
            let today = NaiveDate::default() + chrono::Duration::days(offset);
            let _ = parse_day(&text, today);
        }

        #[test]
        fn relative_days_count_back(n in 0u64..10_000) {
            let today = day("2024-03-01");
            proptest::prop_assert_eq!(parse_day(&format!("-{n}d"), today), today.checked_sub_days(Days::new(n)));
        }

        #[test]
        fn written_days_read_back(offset in -200_000i64..200_000) {
            let d = NaiveDate::default() + chrono::Duration::days(offset);
            let text = d.format("%Y-%m-%d").to_string();
            let expected = if text.len() == 10 { Some(d) } else { None };
            proptest::prop_assert_eq!(parse_day(&text, d), expected);
        }
    }

    #[test]
    fn date32_epoch() {
        assert_eq!(to_date32(day("1970-01-01")), 0);
        assert_eq!(to_date32(day("2024-06-18")), 19892);
        assert_eq!(from_date32(19892), Some(day("2024-06-18")));
    }
}
