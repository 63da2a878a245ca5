//! Credentials in URLs: `http://user:secret@host` is how some gateways take basic auth,
//! and the URL is what run logs, manifests and messages record. The password is
//! replaced by `***` wherever a URL is stored or printed; the user name stays (it says
//! which account ran), and the request itself still carries both (the HTTP client
//! sends them as basic auth).

/// `url` with the password of its user info (if any) replaced by `***`. Works on any
/// string, parseable or not: the user info is what lies between `://` and the last `@`
/// before the first `/`, `?` or `#` of the authority.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_string();
    };
    let rest = &url[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return url.to_string();
    };
    format!(
        "{}{}:***{}",
        &url[..scheme_end],
        &authority[..colon],
        &rest[at..]
    )
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn the_password_is_replaced_the_rest_kept() {
        assert_eq!(
            redact_url("http://user:pass@host:8000/v1?a=b@c"),
            "http://user:***@host:8000/v1?a=b@c"
        );
        assert_eq!(redact_url("https://u:p:q@h"), "https://u:***@h");
        assert_eq!(redact_url("http://a:b@c@host/"), "http://a:***@host/");
        assert_eq!(redact_url("http://user@host/"), "http://user@host/");
        assert_eq!(redact_url("http://host:8000/x@y"), "http://host:8000/x@y");
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(redact_url("http://:secret@host"), "http://:***@host");
    }
}
