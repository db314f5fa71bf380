//! Amounts in the currency's own minor units (ISO 4217), computed on the digits, never through
//! floating point.

/// ISO 4217 currencies without minor units (`JPY 1500`): their amounts have no decimals.
const ZERO_DECIMAL_CURRENCIES: [&str; 17] = [
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];
/// ISO 4217 currencies with three decimals (`KWD 1.235`).
const THREE_DECIMAL_CURRENCIES: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
/// ISO 4217 units of account with four decimals (Chile's UF, Uruguay's UYW).
const FOUR_DECIMAL_CURRENCIES: [&str; 2] = ["CLF", "UYW"];

/// The number of decimals (ISO 4217 minor units) of a currency code, any case: 0 for JPY, KRW and
/// the other zero-decimal currencies, 3 for KWD, BHD, OMR, JOD, TND, IQD and LYD, 4 for CLF and
/// UYW, and 2 for every other code and when the currency is unknown.
pub fn minor_units(currency: Option<&str>) -> usize {
    let Some(code) = currency.map(str::trim) else {
        return 2;
    };
    let is = |list: &[&str]| list.iter().any(|c| c.eq_ignore_ascii_case(code));
    if is(&ZERO_DECIMAL_CURRENCIES) {
        0
    } else if is(&THREE_DECIMAL_CURRENCIES) {
        3
    } else if is(&FOUR_DECIMAL_CURRENCIES) {
        4
    } else {
        2
    }
}

/// A decimal amount written with exactly the currency's own decimals ([`minor_units`]), computed on
/// the digits (never through `f64`): `"1500.00"` JPY → `"1500"`, `"10"` USD → `"10.00"`,
/// `"1.2345"` KWD → `"1.235"`. Digits are only dropped when the amount has more of them than the
/// currency, and then it is rounded half away from zero (`"0.125"` USD → `"0.13"`); missing digits
/// are zeros, so nothing is invented. Negative, exponent or otherwise non-decimal text yields `None`.
pub fn currency_amount(amount: &str, currency: Option<&str>) -> Option<String> {
    let decimals = minor_units(currency);
    let amount = amount.trim();
    let (int, frac) = amount.split_once('.').unwrap_or((amount, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int.is_empty() && frac.is_empty()) || !all_digits(int) || !all_digits(frac) {
        return None;
    }
    let int = int.trim_start_matches('0');
    let frac = frac.as_bytes();
    let digit = |i: usize| frac.get(i).copied().unwrap_or(b'0');
    // The amount in minor units, as decimal digits, most significant first.
    let mut minor: Vec<u8> = int.bytes().chain((0..decimals).map(digit)).collect();
    if digit(decimals) >= b'5' {
        let mut i = minor.len();
        loop {
            if i == 0 {
                minor.insert(0, b'1');
                break;
            }
            i -= 1;
            if minor[i] == b'9' {
                minor[i] = b'0';
            } else {
                minor[i] += 1;
                break;
            }
        }
    }
    let (units, fraction) = minor.split_at(minor.len() - decimals);
    let units = std::str::from_utf8(units).ok()?.trim_start_matches('0');
    let units = if units.is_empty() { "0" } else { units };
    if decimals == 0 {
        return Some(units.to_owned());
    }
    Some(format!("{units}.{}", std::str::from_utf8(fraction).ok()?))
}
