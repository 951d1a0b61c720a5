//! Store locations: `env:NAME` indirection and redaction.
//!
//! A location may carry a credential (a Redis password, a SAS signature, an account key). Writing
//! `env:NAME` keeps it out of argv and shell history; [`redact`] keeps it out of every message,
//! log line and JSON field.

use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// What replaces a secret in a redacted location.
pub const REDACTED: &str = "***";

/// Query parameters whose values are credentials (compared case-insensitively).
const SECRET_PARAMS: &[&str] = &[
    "sig",
    "signature",
    "password",
    "pass",
    "pwd",
    "secret",
    "client_secret",
    "token",
    "access_token",
    "sas",
    "code",
    "apikey",
    "api-key",
    "accountkey",
];

/// Connection-string keys whose values are credentials (`AccountKey=…;`).
const SECRET_SETTINGS: &[&str] = &[
    "accountkey",
    "sharedaccesssignature",
    "sharedaccesskey",
    "password",
    "pwd",
    "clientsecret",
];

/// Resolves `env:NAME` to the value of environment variable `NAME`; any other location is
/// returned as it is. The value may hold a credential, so it is wiped on drop.
pub fn resolve(location: &str) -> Result<Zeroizing<String>> {
    let Some(name) = location.strip_prefix("env:") else {
        return Ok(Zeroizing::new(location.to_owned()));
    };
    if name.is_empty() {
        return Err(Error::config(
            "'env:' must be followed by the name of an environment variable (env:NAME)",
        ));
    }
    match std::env::var(name) {
        Ok(value) => {
            let value = Zeroizing::new(value);
            if value.trim().is_empty() {
                Err(Error::config(format!(
                    "environment variable {name} (named by env:{name}) is empty; set it to the store location"
                )))
            } else if value.starts_with("env:") {
                Err(Error::config(format!(
                    "environment variable {name} holds another env: reference; it must hold the store location itself"
                )))
            } else {
                Ok(value)
            }
        }
        Err(std::env::VarError::NotPresent) => Err(Error::config(format!(
            "environment variable {name} (named by env:{name}) is not set; set it to the store location"
        ))),
        Err(std::env::VarError::NotUnicode(_)) => Err(Error::config(format!(
            "environment variable {name} (named by env:{name}) is not valid unicode"
        ))),
    }
}

/// A location fit for printing: the password of a URL's user information, credential query
/// parameters (`sig=` of a SAS, `password=`, …) and connection-string secrets (`AccountKey=`)
/// are replaced by `***`. An `env:NAME` location is printed as it is (it holds no secret).
pub fn redact(location: &str) -> String {
    if location.starts_with("env:") {
        return location.to_owned();
    }
    if let Some((scheme, rest)) = location.split_once("://") {
        let mut out = String::with_capacity(location.len());
        out.push_str(scheme);
        out.push_str("://");
        // The authority ends at the first '/', '?' or '#'; the user information at its last '@'.
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                match userinfo.split_once(':') {
                    Some((user, _password)) => {
                        out.push_str(user);
                        out.push(':');
                        out.push_str(REDACTED);
                    }
                    None => out.push_str(userinfo),
                }
                out.push('@');
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        let (before_fragment, fragment) = match tail.split_once('#') {
            Some((a, f)) => (a, Some(f)),
            None => (tail, None),
        };
        match before_fragment.split_once('?') {
            Some((path, query)) => {
                out.push_str(path);
                out.push('?');
                out.push_str(&redact_pairs(query, '&', SECRET_PARAMS));
            }
            None => out.push_str(before_fragment),
        }
        if let Some(f) = fragment {
            out.push('#');
            out.push_str(f);
        }
        return out;
    }
    if location.contains('=') && location.contains(';') {
        return redact_pairs(location, ';', SECRET_SETTINGS);
    }
    if let Some((path, query)) = location.split_once('?')
        && query.contains('=')
    {
        return format!("{path}?{}", redact_pairs(query, '&', SECRET_PARAMS));
    }
    location.to_owned()
}

fn redact_pairs(pairs: &str, separator: char, secret: &[&str]) -> String {
    let parts: Vec<String> = pairs
        .split(separator)
        .map(|pair| match pair.split_once('=') {
            Some((k, _)) if secret.iter().any(|s| k.trim().eq_ignore_ascii_case(s)) => {
                format!("{k}={REDACTED}")
            }
            _ => pair.to_owned(),
        })
        .collect();
    parts.join(&separator.to_string())
}

/// Removes every occurrence of the secrets of `location` (password, signature) from `message`:
/// for error texts of client libraries that may quote the URL they were given.
#[cfg_attr(not(any(feature = "redis", feature = "azure")), allow(dead_code))] // used by network stores
pub(crate) fn scrub(message: &str, location: &str) -> String {
    let mut out = message.to_owned();
    for secret in secrets_of(location) {
        if secret.len() >= 3 {
            out = out.replace(&secret, REDACTED);
        }
    }
    out
}

/// The credential substrings of a location (raw and percent-decoded).
#[cfg_attr(not(any(feature = "redis", feature = "azure")), allow(dead_code))] // used by network stores
fn secrets_of(location: &str) -> Vec<String> {
    let mut out = Vec::new();
    if let Some((_, rest)) = location.split_once("://") {
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = rest.get(..end).unwrap_or("");
        if let Some((userinfo, _)) = authority.rsplit_once('@')
            && let Some((_, password)) = userinfo.split_once(':')
        {
            out.push(password.to_owned());
            out.push(percent_decode(password));
        }
    }
    let query = location.split_once('?').map(|(_, q)| q).unwrap_or("");
    for pair in query.split('&').chain(location.split(';')) {
        if let Some((k, v)) = pair.split_once('=') {
            let k = k.trim();
            if SECRET_PARAMS
                .iter()
                .chain(SECRET_SETTINGS)
                .any(|s| k.eq_ignore_ascii_case(s))
            {
                out.push(v.to_owned());
                out.push(percent_decode(v));
            }
        }
    }
    out
}

#[cfg_attr(not(any(feature = "redis", feature = "azure")), allow(dead_code))] // used by network stores
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |j: usize| {
            bytes
                .get(j)
                .and_then(|c| (*c as char).to_digit(16))
                .and_then(|d| u8::try_from(d).ok())
        };
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push(h * 16 + l);
                i += 3;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:s3cret@host:6380/2?key=ring"),
            "redis://user:***@host:6380/2?key=ring"
        );
        assert_eq!(redact("rediss://:s3cret@host"), "rediss://:***@host");
        assert_eq!(redact("redis://host"), "redis://host");
        assert_eq!(redact("redis://user@host"), "redis://user@host");
        // A password holding '@' (unencoded): the last '@' ends the user information.
        assert_eq!(redact("redis://u:p@ss@host/0"), "redis://u:***@host/0");
    }

    #[test]
    fn sas_signatures_are_redacted() {
        let url = "https://acct.blob.core.windows.net/keys/ring.xml?sv=2025-11-05&ss=b&srt=sco&sp=racwdl&se=2030-01-01T00:00:00Z&sig=abc%2Bdef%3D";
        let r = redact(url);
        assert!(r.ends_with("&sig=***"), "{r}");
        assert!(r.contains("sv=2025-11-05"), "{r}");
        assert!(!r.contains("abc"), "{r}");
        assert_eq!(
            redact("blob+http://127.0.0.1:10000/devstoreaccount1/c/b?SIG=x#frag"),
            "blob+http://127.0.0.1:10000/devstoreaccount1/c/b?SIG=***#frag"
        );
    }

    #[test]
    fn connection_strings_are_redacted() {
        let cs = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=Zm9vYmFy==;EndpointSuffix=core.windows.net";
        let r = redact(cs);
        assert_eq!(
            r,
            "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=***;EndpointSuffix=core.windows.net"
        );
    }

    #[test]
    fn paths_are_unchanged() {
        assert_eq!(redact("/var/keys"), "/var/keys");
        assert_eq!(redact("C:\\keys\\ring.xml"), "C:\\keys\\ring.xml");
        assert_eq!(redact("env:RING"), "env:RING");
    }

    #[test]
    fn scrub_removes_raw_and_decoded_secrets() {
        let loc = "redis://u:p%40ssw0rd@host";
        let msg = "auth failed for u:p@ssw0rd and u:p%40ssw0rd";
        let s = scrub(msg, loc);
        assert!(!s.contains("ssw0rd"), "{s}");
    }

    #[test]
    fn env_locations_are_resolved_or_refused_clearly() {
        // PATH is set in every test environment.
        let path = std::env::var("PATH").unwrap();
        assert_eq!(&*resolve("env:PATH").unwrap(), &path);
        let e = resolve("env:DPWRAP_SURELY_NOT_SET_1234").unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Config);
        assert!(e.to_string().contains("DPWRAP_SURELY_NOT_SET_1234"));
        assert_eq!(
            resolve("env:").unwrap_err().kind(),
            crate::ErrorKind::Config
        );
        assert_eq!(&*resolve("/a/b").unwrap(), "/a/b");
    }
}
