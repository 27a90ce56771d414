//! Field names that say personal data. A field is treated as PII when its name, split at `_`,
//! contains one of these words (or word sequences), unless it is marked
//! `#[telemetry(not_pii = "reason")]`. The list is documented in `telemetry_core::anonymize`.

/// Each entry is one or more `_`-separated words.
pub(crate) const PII_NAMES: &[&str] = &[
    "email",
    "e_mail",
    "mail",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "access_key",
    "private_key",
    "credential",
    "credentials",
    "ip",
    "ip_addr",
    "ip_address",
    "ipv4",
    "ipv6",
    "mac_address",
    "hostname",
    "host_name",
    "host",
    "username",
    "user_name",
    "login",
    "first_name",
    "last_name",
    "full_name",
    "display_name",
    "phone",
    "phone_number",
    "mobile",
    "address",
    "street",
    "postcode",
    "zip_code",
    "ssn",
    "social_security",
    "passport",
    "credit_card",
    "card_number",
    "iban",
    "birthday",
    "birth_date",
    "date_of_birth",
    "dob",
    "url",
    "uri",
    "path",
    "filename",
    "file_name",
    "directory",
    "dir",
    "home",
    "cookie",
    "session",
    "geo",
    "latitude",
    "longitude",
];

/// The PII word sequence the name contains, if any.
pub(crate) fn pii_word(field: &str) -> Option<&'static str> {
    let lower = field.trim_start_matches("r#").to_ascii_lowercase();
    let words: Vec<&str> = lower.split('_').filter(|w| !w.is_empty()).collect();
    PII_NAMES.iter().copied().find(|entry| {
        let needle: Vec<&str> = entry.split('_').collect();
        words.windows(needle.len()).any(|w| w == needle.as_slice())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_not_substrings() {
        assert_eq!(pii_word("email"), Some("email"));
        assert_eq!(pii_word("owner_email"), Some("email"));
        assert_eq!(pii_word("client_ip_address"), Some("ip"));
        assert_eq!(pii_word("zip"), None);
        assert_eq!(pii_word("shipping_count"), None);
        assert_eq!(pii_word("data_path"), Some("path"));
        assert_eq!(pii_word("node_count"), None);
        assert_eq!(pii_word("api_key"), Some("api_key"));
    }
}
