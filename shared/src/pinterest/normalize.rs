//! Normalization and SHA-256 hashing of `user_data` fields, one function per Pinterest rule.
//!
//! Pure functions. A value that already is 64 hex characters is passed through (lowercased); a value
//! that is empty after normalization yields `None` (never the hash of "").
//!
//! Each normalizer takes the raw Shopify value and returns the exact string to hash, or `None` when
//! nothing usable is left. [`hash`] then turns it into the 64-lowercase-hex digest Pinterest wants.
//! Every normalizer is idempotent: normalizing its own output changes nothing (property-tested; a
//! [`phone`] output is re-read with its `+`, as the international number it is, see there).
//!
//! | field | function | rule |
//! |---|---|---|
//! | `em` | [`email`] | trim, lowercase; must look like `local@domain` |
//! | `ph` | [`phone`] | E.164 digits without `+`; without `+`/`00`, read nationally in the address's (or the default) country, never guessed |
//! | `fn`, `ln` | [`name`] | trim, lowercase, inner spaces and diacritics kept |
//! | `ct` | [`city`] | lowercase, letters and digits only (any script) |
//! | `st` | [`state`] | the province or state code, trimmed, lowercase |
//! | `zp` | [`zip`] | US: first 5 digits; elsewhere lowercase without spaces and dashes |
//! | `country` | [`country`] | ISO 3166-1 alpha-2, lowercase |
//! | `external_id` | [`external_id`] | trim, lowercase |
//! | `ge` | [`gender`] | `m`, `f` or `n` |
//! | `db` | [`date_of_birth`] | `YYYYMMDD` |
//!
//! Text is put in Unicode normalization form C before names and cities are lowercased, so `é`
//! typed as one code point or as `e` plus a combining accent hashes the same.

use std::borrow::Cow;

use icu_normalizer::ComposingNormalizerBorrowed;
use ring::digest::{SHA256, digest};

/// The SHA-256 digest of the UTF-8 bytes of `s`, as 64 lowercase hex characters. ring's SHA-256
/// (assembly, SHA extensions when the CPU has them), like the webhook HMAC
/// ([`crate::shopify::verify`]).
pub fn sha256_hex(s: &str) -> String {
    hex::encode(digest(&SHA256, s.as_bytes()))
}

/// True when `s` is exactly 64 hex characters (either case): a value that is already hashed.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Hashes a normalized value: `None` for an empty value, an existing digest lowercased and passed
/// through, otherwise [`sha256_hex`].
pub fn hash(normalized: &str) -> Option<String> {
    if normalized.is_empty() {
        None
    } else if is_sha256_hex(normalized) {
        Some(normalized.to_ascii_lowercase())
    } else {
        Some(sha256_hex(normalized))
    }
}

/// `em`: trimmed and lowercased. Dots and `+tags` are kept (they are part of the address); a value
/// without text on both sides of an `@` is not an email and yields `None`.
pub fn email(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    let (local, domain) = raw.rsplit_once('@')?;
    if local.is_empty() || domain.is_empty() {
        return None;
    }
    Some(raw.to_lowercase())
}

/// `ph`: the E.164 number without `+` (`+1 (415) 555-2671` → `14155552671`).
///
/// Punctuation, spaces, a `tel:` prefix and extensions are dropped, as is a national trunk prefix
/// (`020 7946 0018` in GB → `442079460018`). A number written with `+` or `00` is read
/// internationally. Any other number is read as a national number of `country`: the ISO alpha-2
/// country of the address it belongs to or, failing that, the shop's configured default (the
/// caller decides which). Without a country such a number yields `None`: a country is never
/// guessed from the leading digits, because `4692223333` (a US number) read as international is
/// +46, Sweden, and its hash could match a stranger. For the same reason a bare `44 20 7946 0018`
/// in a US address yields `None` rather than +44.
///
/// The result is always a number the phone-number metadata (libphonenumber's, through the
/// `phonenumber` crate) recognizes as valid: `555-555-SHIP` or a fictional `555` number yields `None`
/// rather than the hash of something Pinterest can never match. Leading zeros that are part of the
/// E.164 number itself (Italian fixed lines, `+39 06…`) are kept, as E.164 requires.
///
/// The output is the international number without its `+`, so normalizing `+` followed by the
/// output returns it unchanged, whatever `country` is.
pub fn phone(raw: &str, country: Option<&str>) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    if !raw.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    let raw = match raw.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => raw[4..].trim_start(),
        _ => raw,
    };
    if raw.starts_with('+') {
        return parse_phone(None, raw);
    }
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    if let Some(rest) = digits.strip_prefix("00")
        && let Some(e164) = parse_phone(None, &format!("+{rest}"))
    {
        return Some(e164);
    }
    parse_phone(Some(country.and_then(phone_region)?), raw)
}

/// True when `code` is an ISO 3166-1 alpha-2 country (any case) that the phone-number metadata
/// knows, so national numbers can be read in it: the check for a configured default country.
pub fn is_phone_country(code: &str) -> bool {
    let code = code.trim();
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) && phone_region(code).is_some()
}

/// `fn` and `ln`: trimmed and lowercased; inner spaces, hyphens, apostrophes and diacritics kept
/// (`  José María ` → `josé maría`).
pub fn name(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    let lower = nfc(&nfc(raw).to_lowercase()).into_owned();
    non_empty(lower.trim())
}

/// `ct`: lowercase with every character that is not a letter or digit removed, in any script
/// (`San Francisco` → `sanfrancisco`, `Saint-Étienne` → `saintétienne`, `東京都` unchanged).
pub fn city(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    let kept: String = nfc(raw)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric())
        .collect();
    non_empty(&nfc(&kept))
}

/// `st`: the province or state code (Shopify's `province_code`, such as `KY`), trimmed and
/// lowercased. Pass the code, not the province name.
pub fn state(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    non_empty(&raw.to_lowercase())
}

/// `zp`: for the United States and the territories that use US ZIP codes (PR, VI, GU, AS, MP), the
/// first five digits (`94107-1234` → `94107`; fewer than five digits yields `None`); elsewhere, or
/// when the country is unknown, lowercase with spaces and dashes removed (`SW1A 1AA` → `sw1a1aa`).
pub fn zip(raw: &str, country: Option<&str>) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    let us = country.is_some_and(|c| {
        ["US", "PR", "VI", "GU", "AS", "MP"]
            .iter()
            .any(|us| c.trim().eq_ignore_ascii_case(us))
    });
    if us {
        let five: String = raw.chars().filter(char::is_ascii_digit).take(5).collect();
        return (five.len() == 5).then_some(five);
    }
    let kept: String = raw
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace() && !is_dash(*c))
        .collect();
    non_empty(&kept)
}

/// `country`: an ISO 3166-1 alpha-2 code, lowercased (`US` → `us`). Anything that is not two ASCII
/// letters (a country name, `USA`) yields `None`.
pub fn country(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    (raw.len() == 2 && raw.bytes().all(|b| b.is_ascii_alphabetic()))
        .then(|| raw.to_ascii_lowercase())
}

/// `external_id`: the advertiser's id of the person (the Shopify customer id as a decimal string),
/// trimmed and lowercased, as Pinterest's own tag and Shopify pixel do.
pub fn external_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    non_empty(&raw.to_lowercase())
}

/// `ge`: `m`, `f` or `n` from the common spellings (`Female` → `f`, `non-binary` → `n`); anything
/// else yields `None` rather than a guess.
pub fn gender(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    let code = match raw.to_lowercase().as_str() {
        "m" | "male" | "man" => "m",
        "f" | "female" | "woman" => "f",
        "n" | "non-binary" | "nonbinary" | "non binary" | "non_binary" => "n",
        _ => return None,
    };
    Some(code.to_owned())
}

/// `db`: `YYYYMMDD` from `YYYYMMDD`, `YYYY-MM-DD`, `YYYY/MM/DD` or an RFC 3339 timestamp
/// (`1990-07-04` → `19900704`). Impossible dates and ambiguous day/month orders yield `None`.
pub fn date_of_birth(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if let Some(digest) = already_hashed(raw) {
        return Some(digest);
    }
    let date = raw
        .split_once(['T', ' '])
        .map_or(raw, |(date, _)| date)
        .as_bytes();
    let (y, m, d) = match date.len() {
        10 if matches!(date[4], b'-' | b'/') && date[7] == date[4] => {
            (&date[..4], &date[5..7], &date[8..10])
        }
        8 => (&date[..4], &date[4..6], &date[6..8]),
        _ => return None,
    };
    let number = |b: &[u8]| -> Option<u32> {
        if b.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(b).ok()?.parse().ok()
        } else {
            None
        }
    };
    let (y, m, d) = (number(y)?, number(m)?, number(d)?);
    chrono::NaiveDate::from_ymd_opt(i32::try_from(y).ok()?, m, d)?;
    Some(format!("{y:04}{m:02}{d:02}"))
}

fn already_hashed(trimmed: &str) -> Option<String> {
    is_sha256_hex(trimmed).then(|| trimmed.to_ascii_lowercase())
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn nfc(s: &str) -> Cow<'_, str> {
    ComposingNormalizerBorrowed::new_nfc().normalize(s)
}

fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{FE63}' | '\u{FF0D}'
    )
}

/// The phone-number region of an ISO alpha-2 country code, if the metadata knows it.
fn phone_region(country: &str) -> Option<phonenumber::country::Id> {
    country.trim().to_ascii_uppercase().parse().ok()
}

/// Parses and validates; returns the E.164 digits without `+`.
fn parse_phone(region: Option<phonenumber::country::Id>, text: &str) -> Option<String> {
    let number = phonenumber::parse(region, text).ok()?;
    if !number.is_valid() {
        return None;
    }
    // Built from the parts rather than the crate's formatter, whose `Display` fails (and would
    // make `to_string` panic) for a country code without metadata.
    Some(format!("{}{}", number.code().value(), number.national()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The vectors of `shared/reference/pinterest-capi.md` §3, copied verbatim.
    mod reference_vectors {
        use super::*;

        const EM: &str = "86e0b9e56c17cc4d12387e1949b85053fbe73bc3ce5a1188713a9d300cc6133d";
        pub(super) const PH: &str =
            "758fbf68945f21c416814c539ab578876c8d98fb69e6da692def92cd52417fe0";
        const FN: &str = "81f8f6dde88365f3928796ec7aa53f72820b06db8664f5fe76a7eb13e24546a2";
        const LN: &str = "799ef92a11af918e3fb741df42934f3b568ed2d93ac1df74f1b8d41a27932a6f";
        const GE: &str = "252f10c83610ebca1a059c0bae8255eba2f95be4d1d7bcfa89d7248a82d9f111";
        const DB: &str = "ab76a422ac8223f4dc26821ade87ad3942389a82d4440b4c500a4f36795b1004";
        const CT: &str = "1a6bd4d9d79dc0a79b53795c70d3349fa9e38968a3fbefbfe8783efb1d2b6aac";
        const ST: &str = "6959097001d10501ac7d54c0bdb8db61420f658f2922cc26e46d536119a31126";
        const ZP: &str = "c884a209ebe08750a7d13db63bd02233b375bd79786cbe329ab11586cc35dead";
        const COUNTRY: &str = "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621";
        const EXTERNAL_ID: &str =
            "4531fe3bcb6eedc042092c768c916671c029683baee2b67653f9b02e7036cd8c";

        fn hashed(normalized: Option<String>) -> String {
            hash(&normalized.expect("normalizes to a value")).expect("hashes")
        }

        #[test]
        fn email_vector_matches() {
            assert_eq!(
                email("  Jane.Doe@Example.COM ").as_deref(),
                Some("jane.doe@example.com")
            );
            assert_eq!(hashed(email("  Jane.Doe@Example.COM ")), EM);
        }

        #[test]
        fn phone_vector_matches() {
            assert_eq!(
                phone("+1 (415) 555-2671", None).as_deref(),
                Some("14155552671")
            );
            assert_eq!(hashed(phone("+1 (415) 555-2671", None)), PH);
        }

        #[test]
        fn first_and_last_name_vectors_match() {
            assert_eq!(name(" Jane ").as_deref(), Some("jane"));
            assert_eq!(hashed(name(" Jane ")), FN);
            assert_eq!(hashed(name("Doe")), LN);
        }

        #[test]
        fn gender_vector_matches() {
            assert_eq!(gender("Female").as_deref(), Some("f"));
            assert_eq!(hashed(gender("Female")), GE);
        }

        #[test]
        fn date_of_birth_vector_matches() {
            assert_eq!(date_of_birth("1990-07-04").as_deref(), Some("19900704"));
            assert_eq!(hashed(date_of_birth("1990-07-04")), DB);
        }

        #[test]
        fn city_vector_matches() {
            assert_eq!(city("San Francisco").as_deref(), Some("sanfrancisco"));
            assert_eq!(hashed(city("San Francisco")), CT);
        }

        #[test]
        fn state_vector_matches() {
            assert_eq!(state("CA").as_deref(), Some("ca"));
            assert_eq!(hashed(state("CA")), ST);
        }

        #[test]
        fn zip_vector_matches() {
            assert_eq!(zip("94107-1234", Some("US")).as_deref(), Some("94107"));
            assert_eq!(hashed(zip("94107-1234", Some("US"))), ZP);
        }

        #[test]
        fn country_vector_matches() {
            assert_eq!(country("US").as_deref(), Some("us"));
            assert_eq!(hashed(country("US")), COUNTRY);
        }

        #[test]
        fn external_id_vector_matches() {
            assert_eq!(
                external_id("Customer-7390123").as_deref(),
                Some("customer-7390123")
            );
            assert_eq!(hashed(external_id("Customer-7390123")), EXTERNAL_ID);
        }
    }

    #[test]
    fn sha256_hex_is_64_lowercase_hex() {
        // FIPS 180-2 test vector.
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hash_never_hashes_the_empty_string() {
        assert_eq!(hash(""), None);
    }

    #[test]
    fn hash_passes_existing_digests_through_lowercased() {
        let upper = "86E0B9E56C17CC4D12387E1949B85053FBE73BC3CE5A1188713A9D300CC6133D";
        assert_eq!(hash(upper), Some(upper.to_ascii_lowercase()));
        // 63 or 65 characters is not a digest: it gets hashed.
        assert_ne!(hash(&upper[1..]).as_deref(), Some(&upper[1..]));
    }

    #[test]
    fn every_normalizer_passes_existing_digests_through() {
        let digest = " 758FBF68945F21C416814C539AB578876C8D98FB69E6DA692DEF92CD52417FE0 ";
        let want = Some(digest.trim().to_ascii_lowercase());
        assert_eq!(email(digest), want);
        assert_eq!(phone(digest, Some("US")), want);
        assert_eq!(name(digest), want);
        assert_eq!(city(digest), want);
        assert_eq!(state(digest), want);
        assert_eq!(zip(digest, Some("US")), want);
        assert_eq!(country(digest), want);
        assert_eq!(external_id(digest), want);
        assert_eq!(gender(digest), want);
        assert_eq!(date_of_birth(digest), want);
    }

    #[test]
    fn email_is_trimmed_and_lowercased_but_keeps_dots_and_tags() {
        assert_eq!(
            email("\tJ.Doe+Pins@GMail.com\n").as_deref(),
            Some("j.doe+pins@gmail.com")
        );
    }

    #[test]
    fn email_without_an_address_is_dropped() {
        for bad in ["", "   ", "n/a", "@example.com", "jane@", "jane"] {
            assert_eq!(email(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn phone_keeps_digits_with_the_country_code() {
        let cases = [
            ("+1(502)-459-2181", None, "15024592181"),
            ("+16136120707", None, "16136120707"),
            ("+557734881234", None, "557734881234"),
            ("tel:+1-415-555-2671", None, "14155552671"),
            ("+1 415 555 2671 ext. 123", None, "14155552671"),
            ("+44 (0)20 7946 0018", None, "442079460018"),
        ];
        for (raw, region, want) in cases {
            assert_eq!(phone(raw, region).as_deref(), Some(want), "{raw:?}");
        }
    }

    #[test]
    fn phone_derives_a_missing_country_code_from_the_address_country() {
        let cases = [
            ("(415) 555-2671", "US", "14155552671"),
            ("415.555.2671", "us", "14155552671"),
            ("020 7946 0018", "GB", "442079460018"),
            ("07911 123456", "GB", "447911123456"),
            ("06 12 34 56 78", "FR", "33612345678"),
            ("030 1234567", "DE", "49301234567"),
            ("(613) 612-0707", "CA", "16136120707"),
        ];
        for (raw, country, want) in cases {
            assert_eq!(phone(raw, Some(country)).as_deref(), Some(want), "{raw:?}");
        }
    }

    #[test]
    fn phone_strips_the_national_trunk_zero_but_keeps_e164_leading_zeros() {
        assert_eq!(
            phone("020 7946 0018", Some("GB")).as_deref(),
            Some("442079460018")
        );
        // Italian fixed lines keep their 0 in E.164 (+39 06 …), which is what Pinterest matches.
        assert_eq!(
            phone("06 6982 1234", Some("IT")).as_deref(),
            Some("390669821234")
        );
    }

    #[test]
    fn phone_reads_00_prefixed_numbers_internationally_with_or_without_a_country() {
        for country in [None, Some("US"), Some("GB"), Some("DE")] {
            assert_eq!(
                phone("0044 20 7946 0018", country).as_deref(),
                Some("442079460018"),
                "{country:?}"
            );
            assert_eq!(
                phone("00 1 415 555 2671", country).as_deref(),
                Some("14155552671"),
                "{country:?}"
            );
        }
        assert_eq!(
            hash(&phone("0014155552671", None).expect("a number")).as_deref(),
            Some(reference_vectors::PH)
        );
    }

    /// Issue 12: US numbers typed without `+1` were read as +46 (Sweden), +64 (New Zealand) and +32
    /// (Belgium) when the order named no country. `(raw, E.164 without +, SHA-256)`; the digests
    /// were computed outside the crate (`printf %s 14692223333 | sha256sum`).
    const US_NUMBERS_THAT_LOOK_INTERNATIONAL: [(&str, &str, &str); 3] = [
        (
            "4692223333",
            "14692223333",
            "a04fcbf6c8f15bad464e2d2838173928464f2086ca420c40cfa424e80a545eb6",
        ),
        (
            "6465550199",
            "16465550199",
            "0c82ed9de8cef0e789845770db2d4bf31b5a2952e6b7f0e8fdcc973bd73f7fd8",
        ),
        (
            "3235551234",
            "13235551234",
            "3cb9c1db8556f1e069f9d9d5f910c66623f84a5e8b716b6557d3013d5742ff39",
        ),
    ];

    #[test]
    fn phone_without_a_plus_or_a_country_is_dropped_never_guessed_from_its_digits() {
        for (raw, _, _) in US_NUMBERS_THAT_LOOK_INTERNATIONAL {
            assert_eq!(phone(raw, None), None, "{raw:?}");
        }
        assert_eq!(phone("14155552671", None), None);
        assert_eq!(phone("44 20 7946 0018", None), None);
        // A bare country code is not read as one either: in a US address this is no US number.
        assert_eq!(phone("44 20 7946 0018", Some("US")), None);
    }

    #[test]
    fn phone_without_a_plus_takes_the_given_country() {
        for (raw, e164, digest) in US_NUMBERS_THAT_LOOK_INTERNATIONAL {
            let got = phone(raw, Some("US"));
            assert_eq!(got.as_deref(), Some(e164), "{raw:?}");
            assert_eq!(hash(e164).as_deref(), Some(digest), "{raw:?}");
        }
        // The country code written without `+` is still understood within its own country.
        assert_eq!(
            phone("1 415 555 2671", Some("US")).as_deref(),
            Some("14155552671")
        );
    }

    #[test]
    fn is_phone_country_accepts_known_alpha2_codes_only() {
        for ok in ["US", "us", " GB ", "JP", "KW"] {
            assert!(is_phone_country(ok), "{ok:?}");
        }
        for bad in ["", "USA", "U", "XX", "1A", "+1", "United States"] {
            assert!(!is_phone_country(bad), "{bad:?}");
        }
    }

    #[test]
    fn phone_that_is_not_a_real_number_is_dropped() {
        for (raw, country) in [
            ("", Some("US")),
            ("n/a", Some("US")),
            ("555-555-SHIP", Some("US")),
            ("555-625-1199", Some("US")),
            ("123", Some("US")),
            ("+0 123", None),
            ("+999 1234 5678", None),
        ] {
            assert_eq!(phone(raw, country), None, "{raw:?}");
        }
    }

    #[test]
    fn phone_ignores_an_unknown_address_country() {
        assert_eq!(
            phone("+1 415 555 2671", Some("XX")).as_deref(),
            Some("14155552671")
        );
        assert_eq!(phone("(415) 555-2671", Some("USA")), None);
    }

    #[test]
    fn name_keeps_inner_spaces_and_diacritics() {
        assert_eq!(name("  José María ").as_deref(), Some("josé maría"));
        assert_eq!(name("O'Brien-Smith").as_deref(), Some("o'brien-smith"));
        assert_eq!(name("ÉLODIE").as_deref(), Some("élodie"));
        assert_eq!(name("   "), None);
    }

    #[test]
    fn name_hashes_composed_and_decomposed_accents_alike() {
        assert_eq!(name("Jose\u{301}"), name("Jos\u{e9}"));
        assert_eq!(city("Montre\u{301}al"), city("Montr\u{e9}al"));
    }

    #[test]
    fn city_keeps_letters_and_digits_of_any_script() {
        let cases = [
            ("San Francisco", "sanfrancisco"),
            ("  Saint-Étienne ", "saintétienne"),
            ("St. John's", "stjohns"),
            ("Winston–Salem", "winstonsalem"),
            ("東京都", "東京都"),
            ("Москва", "москва"),
            ("Zürich 8001", "zürich8001"),
        ];
        for (raw, want) in cases {
            assert_eq!(city(raw).as_deref(), Some(want), "{raw:?}");
        }
        assert_eq!(city(" - . "), None);
    }

    #[test]
    fn state_is_the_lowercase_code() {
        assert_eq!(state(" KY ").as_deref(), Some("ky"));
        assert_eq!(state("ON").as_deref(), Some("on"));
        assert_eq!(state(""), None);
    }

    #[test]
    fn zip_keeps_five_digits_in_the_us() {
        assert_eq!(zip("40202", Some("US")).as_deref(), Some("40202"));
        assert_eq!(zip(" 94107 1234", Some("us")).as_deref(), Some("94107"));
        assert_eq!(zip("00901-1234", Some("PR")).as_deref(), Some("00901"));
        assert_eq!(zip("4020", Some("US")), None);
        assert_eq!(zip("K2P0B0", Some("US")), None);
    }

    #[test]
    fn zip_elsewhere_is_lowercase_without_spaces_or_dashes() {
        assert_eq!(zip("K2P 2L8", Some("CA")).as_deref(), Some("k2p2l8"));
        assert_eq!(zip("SW1A 1AA", Some("GB")).as_deref(), Some("sw1a1aa"));
        assert_eq!(zip("1234-567", Some("PT")).as_deref(), Some("1234567"));
        assert_eq!(zip("75008", None).as_deref(), Some("75008"));
        assert_eq!(zip(" - ", Some("GB")), None);
    }

    #[test]
    fn country_is_a_lowercase_alpha2_code() {
        assert_eq!(country(" CA ").as_deref(), Some("ca"));
        for bad in ["", "USA", "United States", "U", "1A", "ÉU"] {
            assert_eq!(country(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn external_id_is_the_trimmed_lowercase_id() {
        assert_eq!(external_id(" 207119551 ").as_deref(), Some("207119551"));
        assert_eq!(external_id(""), None);
    }

    #[test]
    fn gender_maps_common_spellings_and_drops_the_rest() {
        for (raw, want) in [
            ("M", "m"),
            ("male", "m"),
            (" Female ", "f"),
            ("f", "f"),
            ("Non-Binary", "n"),
            ("n", "n"),
        ] {
            assert_eq!(gender(raw).as_deref(), Some(want), "{raw:?}");
        }
        for bad in ["", "g", "unknown", "1"] {
            assert_eq!(gender(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn date_of_birth_is_yyyymmdd() {
        for raw in [
            "1990-07-04",
            "19900704",
            "1990/07/04",
            "1990-07-04T00:00:00Z",
            " 1990-07-04 ",
        ] {
            assert_eq!(date_of_birth(raw).as_deref(), Some("19900704"), "{raw:?}");
        }
        for bad in [
            "",
            "07/04/1990",
            "1990-02-30",
            "1990-13-01",
            "1990-07/04",
            "90-07-04",
            "1990704",
            "１９９０-07-04",
        ] {
            assert_eq!(date_of_birth(bad), None, "{bad:?}");
        }
    }

    fn idempotent(f: impl Fn(&str) -> Option<String>, raw: &str) -> Result<(), TestCaseError> {
        let once = f(raw);
        let twice = once.as_deref().and_then(&f);
        prop_assert_eq!(twice, once, "input {:?}", raw);
        Ok(())
    }

    const COUNTRIES: [Option<&str>; 10] = [
        None,
        Some("US"),
        Some("CA"),
        Some("GB"),
        Some("FR"),
        Some("DE"),
        Some("IT"),
        Some("BR"),
        Some("AU"),
        Some("IN"),
    ];

    proptest! {
        #[test]
        fn email_normalization_is_idempotent(raw in any::<String>()) {
            idempotent(email, &raw)?;
        }

        #[test]
        fn email_like_normalization_is_idempotent(raw in "\\PC{0,12}@\\PC{0,12}") {
            idempotent(email, &raw)?;
        }

        // The output of `phone` is a complete international number without its `+`, so it is
        // normalized again with the `+`, with or without a country. (Without the `+` it is not
        // idempotent by design: digits without `+` are read nationally, and `2522000000` is both
        // the output for Somalia's +252 2000 0000 and a valid US national number.)
        #[test]
        fn phone_normalization_is_idempotent(
            raw in "[+]?[0-9 ()./-]{0,20}",
            country in proptest::sample::select(COUNTRIES.to_vec()),
        ) {
            let once = phone(&raw, country);
            prop_assert_eq!(once.as_deref().and_then(|p| phone(&format!("+{p}"), None)), once.clone());
            prop_assert_eq!(once.as_deref().and_then(|p| phone(&format!("+{p}"), country)), once);
        }

        #[test]
        fn phone_normalization_of_any_text_is_idempotent(
            raw in any::<String>(),
            country in proptest::sample::select(COUNTRIES.to_vec()),
        ) {
            let once = phone(&raw, country);
            prop_assert_eq!(once.as_deref().and_then(|p| phone(&format!("+{p}"), None)), once);
        }

        #[test]
        fn name_normalization_is_idempotent(raw in any::<String>()) {
            idempotent(name, &raw)?;
        }

        #[test]
        fn city_normalization_is_idempotent(raw in any::<String>()) {
            idempotent(city, &raw)?;
        }

        #[test]
        fn state_normalization_is_idempotent(raw in any::<String>()) {
            idempotent(state, &raw)?;
        }

        #[test]
        fn zip_normalization_is_idempotent(
            raw in any::<String>(),
            country in proptest::sample::select(COUNTRIES.to_vec()),
        ) {
            idempotent(|s| zip(s, country), &raw)?;
        }

        #[test]
        fn country_normalization_is_idempotent(raw in any::<String>()) {
            idempotent(country, &raw)?;
        }

        #[test]
        fn external_id_normalization_is_idempotent(raw in any::<String>()) {
            idempotent(external_id, &raw)?;
        }

        #[test]
        fn gender_normalization_is_idempotent(raw in any::<String>()) {
            idempotent(gender, &raw)?;
        }

        #[test]
        fn date_of_birth_normalization_is_idempotent(raw in "\\PC{0,4}[0-9/ T:-]{0,20}") {
            idempotent(date_of_birth, &raw)?;
        }

        #[test]
        fn hash_output_is_always_a_lowercase_digest(raw in any::<String>()) {
            if let Some(h) = hash(&raw) {
                prop_assert!(is_sha256_hex(&h));
                prop_assert_eq!(h.to_ascii_lowercase(), h);
            } else {
                prop_assert!(raw.is_empty());
            }
        }
    }
}
