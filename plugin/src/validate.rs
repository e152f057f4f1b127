//! Validation of the Brazilian CPF and of e-mail addresses.

/// Normalises a CPF (`123.456.789-09` or `12345678909`) to its 11 digits when it is valid:
/// 11 digits after removing `.`, `-` and spaces, not all equal, both check digits right.
pub fn normalize_cpf(input: &str) -> Option<String> {
    let trimmed = input.trim();
    if trimmed
        .chars()
        .any(|c| !(c.is_ascii_digit() || c == '.' || c == '-' || c == ' '))
    {
        return None;
    }
    let digits: Vec<u32> = trimmed.chars().filter_map(|c| c.to_digit(10)).collect();
    if digits.len() != 11 || digits.iter().all(|d| *d == digits[0]) {
        return None;
    }
    let check = |len: usize| -> u32 {
        let sum: u32 = digits[..len]
            .iter()
            .enumerate()
            .map(|(i, d)| d * (len as u32 + 1 - i as u32))
            .sum();
        let rest = (sum * 10) % 11;
        if rest == 10 {
            0
        } else {
            rest
        }
    };
    if check(9) != digits[9] || check(10) != digits[10] {
        return None;
    }
    Some(
        digits
            .iter()
            .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
            .collect(),
    )
}

/// A pragmatic e-mail check: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn normalize_email(input: &str) -> Option<String> {
    let email = input.trim();
    if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = email.split_once('@')?;
    if local.is_empty() || domain.contains('@') || local.len() > 64 {
        return None;
    }
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2
        || labels.iter().any(|l| {
            l.is_empty()
                || l.starts_with('-')
                || l.ends_with('-')
                || !l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
    {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

/// Case-insensitive e-mail comparison.
pub fn same_email(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpf_formats_and_check_digits() {
        assert_eq!(
            normalize_cpf("123.456.789-09").as_deref(),
            Some("12345678909")
        );
        assert_eq!(normalize_cpf("12345678909").as_deref(), Some("12345678909"));
        assert_eq!(
            normalize_cpf(" 529.982.247-25 ").as_deref(),
            Some("52998224725")
        );
        assert_eq!(normalize_cpf("123.456.789-08"), None);
        assert_eq!(normalize_cpf("111.111.111-11"), None);
        assert_eq!(normalize_cpf("00000000000"), None);
        assert_eq!(normalize_cpf("1234567890"), None);
        assert_eq!(normalize_cpf("123456789091"), None);
        assert_eq!(normalize_cpf("123a4567890"), None);
        assert_eq!(normalize_cpf(""), None);
    }

    #[test]
    fn emails() {
        assert_eq!(
            normalize_email(" Maria@Example.COM ").as_deref(),
            Some("Maria@example.com")
        );
        assert!(normalize_email("a@b").is_none());
        assert!(normalize_email("a b@c.com").is_none());
        assert!(normalize_email("@c.com").is_none());
        assert!(normalize_email("a@@c.com").is_none());
        assert!(normalize_email("a@c..com").is_none());
        assert!(normalize_email("").is_none());
        assert!(same_email("A@x.com", "a@X.COM"));
    }

    proptest! {
        #[test]
        fn generated_cpfs_validate(base in proptest::collection::vec(0u32..10, 9)) {
            prop_assume!(!base.iter().all(|d| *d == base[0]));
            let mut digits = base.clone();
            for len in [9usize, 10] {
                let sum: u32 = digits.iter().enumerate().map(|(i, d)| d * (len as u32 + 1 - i as u32)).sum();
                let r = (sum * 10) % 11;
                digits.push(if r == 10 { 0 } else { r });
            }
            let s: String = digits.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect();
            prop_assert_eq!(normalize_cpf(&s), Some(s.clone()));
            // Changing the last digit always breaks it.
            let mut bad = digits.clone();
            bad[10] = (bad[10] + 1) % 10;
            let b: String = bad.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect();
            prop_assert_eq!(normalize_cpf(&b), None);
        }
    }
}
