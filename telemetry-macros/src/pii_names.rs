//! Field names that say personal data: the one list, used by the `Telemetry` derive and
//! rendered into `telemetry_core`'s documentation (`__pii_names_doc!`).
//!
//! A name is split into words at `_`, at case changes (`userEmail`, `clientIP`, `IPAddress`)
//! and between letters and digits (`email2`), lower-cased, and each word's plural is folded
//! (`emails`, `addresses`, `cities`). The name is PII when its words contain one of these
//! entries (one or more words each), unless the field says `#[telemetry(not_pii = "reason")]`.

/// Each entry is one or more `_`-separated lower-case words.
pub(crate) const PII_NAMES: &[&str] = &[
    // Contact and identity.
    "email",
    "e_mail",
    "mail",
    "phone",
    "mobile",
    "msisdn",
    "username",
    "user_name",
    "login",
    "nickname",
    "first_name",
    "last_name",
    "full_name",
    "display_name",
    "given_name",
    "family_name",
    "surname",
    "birthday",
    "birth_date",
    "date_of_birth",
    "dob",
    // Secrets.
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
    "cookie",
    "session",
    // Network and machine identifiers.
    "ip",
    "ip_addr",
    "ip_address",
    "ipv4",
    "ipv6",
    "addr",
    "remote_addr",
    "peer_addr",
    "mac",
    "mac_address",
    "hostname",
    "host_name",
    "host",
    "device_id",
    "machine_id",
    "hardware_id",
    "serial",
    "serial_number",
    "imei",
    "imsi",
    "udid",
    "idfa",
    "advertising_id",
    "android_id",
    // People's ids and account numbers.
    "user_id",
    "customer_id",
    "account_id",
    "member_id",
    "employee_id",
    "person_id",
    "account_number",
    "tax_id",
    "national_id",
    "ssn",
    "social_security",
    "passport",
    "credit_card",
    "card_number",
    "iban",
    // Where someone is.
    "address",
    "street",
    "city",
    "postcode",
    "postal_code",
    "zip_code",
    "zipcode",
    "geo",
    "gps",
    "coordinate",
    "coord",
    "latitude",
    "longitude",
    "lat",
    "lon",
    "lng",
    // Locations of files and resources, which carry user and host names.
    "url",
    "uri",
    "path",
    "filename",
    "file_name",
    "directory",
    "dir",
    "home",
];

/// `name` split into lower-case words at `_`, case changes and letter/digit boundaries.
pub(crate) fn words(name: &str) -> Vec<String> {
    let name = name.trim_start_matches("r#");
    let chars: Vec<char> = name.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            continue;
        }
        if let Some(&prev) = i.checked_sub(1).map(|p| &chars[p]) {
            let next = chars.get(i + 1).copied();
            let boundary = (prev.is_lowercase() && c.is_uppercase())
                || (prev.is_alphabetic() != c.is_alphabetic() && prev.is_alphanumeric())
                // The last capital of a run that starts a word: `IPAddress` -> `IP`, `Address`.
                || (prev.is_uppercase()
                    && c.is_uppercase()
                    && next.is_some_and(char::is_lowercase));
            if boundary && !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
        }
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// `word` and the singulars it may be the plural of.
fn forms(word: &str) -> Vec<String> {
    let mut forms = vec![word.to_owned()];
    if let Some(stem) = word.strip_suffix("ies") {
        forms.push(format!("{stem}y"));
    }
    if let Some(stem) = word.strip_suffix("es") {
        forms.push(stem.to_owned());
    }
    if let Some(stem) = word.strip_suffix('s') {
        forms.push(stem.to_owned());
    }
    forms
}

/// The PII entry the name contains, if any.
pub(crate) fn pii_word(field: &str) -> Option<&'static str> {
    let words: Vec<Vec<String>> = words(field).iter().map(|w| forms(w)).collect();
    PII_NAMES.iter().copied().find(|entry| {
        let needle: Vec<&str> = entry.split('_').collect();
        words.windows(needle.len()).any(|window| {
            window
                .iter()
                .zip(&needle)
                .all(|(forms, want)| forms.iter().any(|f| f == want))
        })
    })
}

/// The list as documentation text (a Markdown sentence), for `telemetry_core`'s docs.
pub(crate) fn doc_text() -> String {
    let entries: Vec<String> = PII_NAMES.iter().map(|e| format!("`{e}`")).collect();
    format!(
        "The PII name list (generated from the list the derive uses): {}. A name matches when \
         its words, split at `_`, case changes and digits, with plurals folded, contain an \
         entry's words in order.",
        entries.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_at_underscores_case_changes_and_digits() {
        assert_eq!(words("userEmail"), ["user", "email"]);
        assert_eq!(words("clientIP"), ["client", "ip"]);
        assert_eq!(words("IPAddress"), ["ip", "address"]);
        assert_eq!(words("email2"), ["email", "2"]);
        assert_eq!(words("r#type"), ["type"]);
        assert_eq!(words("owner__e_mail"), ["owner", "e", "mail"]);
    }

    #[test]
    fn whole_words_with_plurals_not_substrings() {
        for (name, word) in [
            ("email", "email"),
            ("owner_email", "email"),
            ("userEmail", "email"),
            ("emails", "email"),
            ("email2", "email"),
            ("clientIp", "ip"),
            ("client_ip_address", "ip"),
            ("remote_addr", "addr"),
            ("peer_addr", "addr"),
            ("device_id", "device_id"),
            ("serial_number", "serial"),
            ("imei", "imei"),
            ("lat", "lat"),
            ("lng", "lng"),
            ("account_number", "account_number"),
            ("tax_id", "tax_id"),
            ("national_id", "national_id"),
            ("nickname", "nickname"),
            ("home_addresses", "address"),
            ("cities", "city"),
            ("data_path", "path"),
            ("api_key", "api_key"),
        ] {
            assert_eq!(pii_word(name), Some(word), "{name}");
        }
        for name in [
            "zip",
            "shipping_count",
            "node_count",
            "latency",
            "longest",
            "compaction_interval_ops",
            "ships",
            "hostile",
            "platform",
        ] {
            assert_eq!(pii_word(name), None, "{name}");
        }
    }
}
