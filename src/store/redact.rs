//! Database URLs as they may appear in errors and logs: without the password.

/// `url` with any password replaced by `***` (`postgres://app:***@db/boltcall`).
pub fn redact_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if parsed.password().is_none() {
            return url.to_string();
        }
        let _ = parsed.set_password(Some("***"));
        return parsed.to_string();
    }
    // Unparseable: drop everything between the scheme and the last `@` that could be secret.
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_survive() {
        for (url, secret) in [
            ("postgres://app:s3cr%40t@db:5432/boltcall", "s3cr"),
            (
                "postgresql://u:hunter2@localhost/x?sslmode=require",
                "hunter2",
            ),
            ("postgres://u:p@ss:w@rd@host/db", "ss:w"),
            ("post gres://u:topsecret@host/db", "topsecret"),
        ] {
            let shown = redact_url(url);
            assert!(!shown.contains(secret), "{shown}");
            assert!(shown.contains("***"), "{shown}");
        }
        assert_eq!(redact_url("sqlite://boltcall.db"), "sqlite://boltcall.db");
        assert_eq!(
            redact_url("postgres://u@host/db"),
            "postgres://u@host/db",
            "no password, nothing hidden"
        );
    }
}
