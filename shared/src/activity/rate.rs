//! Rates as the legacy shows them: a percentage rounded exactly as Python's `round(x, 2)`.

/// `part / whole` as a percentage, exactly as the legacy computes it: `part / whole * 100` in
/// doubles, then Python's `round(x, 2)`; 0 when `whole` is 0.
pub fn percent(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { round2(part as f64 / whole as f64 * 100.0) }
}

/// Python's `round(x, 2)`: the exact binary value of `x` rounded to two decimals, ties to even,
/// then the double nearest that decimal. (Rounding `x * 100` instead rounds a value that the
/// multiplication already rounded, and ties away from zero: 17/160 would show 10.63, not 10.62.)
/// Exact for |x| < 2^50, far beyond any percentage; larger values are returned unchanged.
pub fn round2(x: f64) -> f64 {
    if !x.is_finite() || x.abs() >= (1u64 << 50) as f64 {
        return x;
    }
    let bits = x.abs().to_bits();
    let (biased, fraction) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
    // |x| = mantissa × 2^exponent exactly.
    let (mantissa, exponent) =
        if biased == 0 { (fraction, -1074) } else { (fraction | 1 << 52, biased - 1075) };
    if exponent >= 0 {
        return x; // a whole number
    }
    let shift = exponent.unsigned_abs();
    // |x| × 100 = hundreds / 2^shift; below 2^-64 it rounds to 0 (never a tie).
    let hundreds = u128::from(mantissa) * 100;
    let rounded = if shift >= 120 {
        0
    } else {
        let (whole, rest) = (hundreds >> shift, hundreds & ((1u128 << shift) - 1));
        let half = 1u128 << (shift - 1);
        if rest > half || (rest == half && whole & 1 == 1) { whole + 1 } else { whole }
    };
    // rounded < 2^57 for |x| < 2^50; exact in a double below 2^53, which covers every
    // percentage. Division by 100 is correctly rounded: the double nearest rounded / 100.
    let value = rounded as f64 / 100.0;
    if x.is_sign_negative() { -value } else { value }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(part, whole, Python's round(part / whole * 100, 2))`, read off CPython 3.11: the
    /// halves that motivated this (17/160, 1/32, …) and pairs where ties-away rounding of
    /// `x * 100` disagrees.
    const PYTHON: [(usize, usize, f64); 27] = [
        (17, 160, 10.62),
        (1, 8, 12.5),
        (3, 16, 18.75),
        (1, 3, 33.33),
        (2, 3, 66.67),
        (7, 40, 17.5),
        (1, 32, 3.12),
        (3, 32, 9.38),
        (5, 32, 15.62),
        (1, 160, 0.62),
        (0, 7, 0.0),
        (7, 7, 100.0),
        (1, 6, 16.67),
        (5, 6, 83.33),
        (1, 7, 14.29),
        (129, 160, 80.62),
        (348, 384, 90.62),
        (143, 352, 40.62),
        (5, 160, 3.12),
        (81, 288, 28.12),
        (202, 320, 63.12),
        (204, 384, 53.12),
        (3, 96, 3.12),
        (13, 32, 40.62),
        (178, 320, 55.62),
        (153, 160, 95.62),
        (231, 352, 65.62),
    ];

    #[test]
    fn percent_is_pythons_round_on_the_tricky_halves() {
        for (part, whole, python) in PYTHON {
            assert_eq!(percent(part, whole), python, "{part}/{whole}");
        }
        assert_eq!(percent(0, 0), 0.0);
    }

    /// The definition, digit by digit: the double's exact decimal expansion (every double is
    /// m / 2^k = m × 5^k / 10^k), rounded at the second decimal with ties to even, then parsed.
    fn reference(x: f64) -> f64 {
        assert!(x >= 0.0);
        let bits = x.to_bits();
        let (biased, fraction) = ((bits >> 52) as i32, bits & ((1 << 52) - 1));
        let (mut m, mut e) =
            if biased == 0 { (fraction, -1074) } else { (fraction | 1 << 52, biased - 1075) };
        while e < 0 && m % 2 == 0 && m > 0 {
            m /= 2;
            e += 1;
        }
        // Little-endian decimal digits of m × 2^e (e ≥ 0) or m × 5^-e (e < 0).
        let mut digits: Vec<u32> = m.to_string().bytes().rev().map(|b| u32::from(b - b'0')).collect();
        let (factor, times) = if e >= 0 { (2, e) } else { (5, -e) };
        for _ in 0..times {
            let mut carry = 0;
            for d in digits.iter_mut() {
                let v = *d * factor + carry;
                *d = v % 10;
                carry = v / 10;
            }
            while carry > 0 {
                digits.push(carry % 10);
                carry /= 10;
            }
        }
        let decimals = if e >= 0 { 0 } else { (-e) as usize };
        while digits.len() <= decimals {
            digits.push(0); // a leading zero before the point
        }
        digits.reverse(); // big-endian; the point sits `decimals` digits from the right
        let point = digits.len() - decimals;
        let (int_part, frac) = digits.split_at(point);
        let mut frac = frac.to_vec();
        frac.resize(frac.len().max(3), 0);
        let mut kept: Vec<u32> = int_part.iter().chain(frac.iter().take(2)).copied().collect();
        let (next, rest) = (frac.get(2).copied().unwrap_or(0), frac.iter().skip(3).any(|d| *d != 0));
        let up = next > 5 || (next == 5 && (rest || kept.last().is_some_and(|d| d % 2 == 1)));
        if up {
            let mut i = kept.len();
            loop {
                i -= 1;
                if kept[i] == 9 {
                    kept[i] = 0;
                    if i == 0 {
                        kept.insert(0, 1);
                        break;
                    }
                } else {
                    kept[i] += 1;
                    break;
                }
            }
        }
        let text: String = kept.iter().map(|d| char::from(b'0' + *d as u8)).collect();
        let (i, f) = text.split_at(text.len() - 2);
        format!("{i}.{f}").parse().unwrap()
    }

    #[test]
    fn the_reference_agrees_with_python_on_the_table() {
        for (part, whole, python) in PYTHON {
            assert_eq!(reference(part as f64 / whole as f64 * 100.0), python, "{part}/{whole}");
        }
    }

    #[test]
    fn percent_equals_the_reference_for_every_pair_up_to_400() {
        for whole in 1..=400usize {
            for part in 0..=whole + 3 {
                let x = part as f64 / whole as f64 * 100.0;
                assert_eq!(percent(part, whole), reference(x), "{part}/{whole}");
            }
        }
        for x in [0.005, 0.015, 1.005, 2.675, 1e-300, 123456.785, 5e-324] {
            assert_eq!(round2(x), reference(x), "{x}");
        }
    }
}
