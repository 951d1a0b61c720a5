//! The Redis store: one Redis list, as `PersistKeysToStackExchangeRedis` keeps a ring.
//!
//! Location: `redis://[user[:password]@]host[:port][/db][?key=NAME]`, or `rediss://…` for TLS;
//! the list is `DataProtection-Keys` unless `key=` names another. (`protocol=resp3` is passed to
//! the client as well.)
//!
//! Read: `LRANGE` in pages of [`READ_PAGE`] items, each item one element, until a short page; the
//! bytes read so far are checked against [`RedisOptions::max_ring_bytes`] after every page, so a
//! list that is not a key ring (or a huge one) stops the read after at most one page more than
//! the bound instead of being loaded whole. Items are only ever pushed or set in place, never
//! removed, so positions are stable between pages. Write: `RPUSH`, each element serialized without
//! declaration, BOM or indentation, as .NET pushes it; `RPUSH` is atomic, so concurrent writers
//! never lose elements.
//!
//! [`replace`](KeyStore::replace) runs a Lua script, atomic on the server: for every change it
//! checks that the item at the position read is still byte-identical to what was read (or finds
//! that exact item where it moved, with `LPOS`), and only when every change is found it `LSET`s
//! them all. Items pushed since the read stay where they are, and a stream of `RPUSH`es cannot
//! starve it (no `WATCH` that others keep invalidating). Large change sets go in batches of a few
//! MiB, each batch atomic; a conflict names how many were already replaced. Nothing is ever
//! deleted and pushed again.
//!
//! Connecting and every command have timeouts ([`RedisOptions`]): an unreachable host fails fast
//! instead of hanging. Passwords never appear in messages or in [`KeyStore::describe`].

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use zeroize::Zeroizing;

use super::location::{redact, scrub};
use super::{Addition, Change, Entry, KeyStore, StoredElement, has_scheme};
use crate::error::{Error, ErrorKind, Result};
use crate::xml::{self, Limits, WriteOptions};

/// Items per `LRANGE` when reading a ring.
pub const READ_PAGE: usize = 1000;

/// The least bytes counted per item against [`RedisOptions::max_ring_bytes`] when bounding how
/// many items are read (the shortest revocation element is longer).
const MIN_ITEM_BYTES: usize = 64;

/// The list .NET uses when no key is configured.
pub const DEFAULT_KEY: &str = "DataProtection-Keys";

/// Connection settings of a [`RedisStore`].
#[derive(Clone)]
pub struct RedisOptions {
    /// How long to wait for the connection (TCP, TLS and authentication). Default 10 s.
    pub connect_timeout: Duration,
    /// How long to wait for any one reply. Default 60 s (loading a large ring, a large replace).
    pub response_timeout: Duration,
    /// A PEM CA certificate to trust for `rediss://` instead of the system roots (a private CA).
    pub root_ca_pem: Option<Vec<u8>>,
    /// Largest batch of a replace, in bytes of old and new elements together. Default 8 MiB.
    pub replace_batch_bytes: usize,
    /// Largest ring read, in bytes of all items together, each item counting at least 64 bytes
    /// (so that a list of empty items is bounded too). Default 128 MiB (as a ring document).
    pub max_ring_bytes: usize,
}

impl Default for RedisOptions {
    fn default() -> RedisOptions {
        RedisOptions {
            connect_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            root_ca_pem: None,
            replace_batch_bytes: 8 * 1024 * 1024,
            max_ring_bytes: Limits::ring_document().max_input_bytes,
        }
    }
}

impl fmt::Debug for RedisOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisOptions")
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("root_ca_pem", &self.root_ca_pem.as_ref().map(|_| "…"))
            .field("replace_batch_bytes", &self.replace_batch_bytes)
            .field("max_ring_bytes", &self.max_ring_bytes)
            .finish()
    }
}

/// Whether a location is a Redis URL.
pub(crate) fn recognises(location: &str) -> bool {
    has_scheme(location, &["redis", "rediss"])
}

/// A ring kept in one Redis list.
pub struct RedisStore {
    client: redis::Client,
    key: String,
    location: Zeroizing<String>,
    described: String,
    options: RedisOptions,
    tls: bool,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("location", &self.described)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Checks (index, old item) and sets the new items; see the module documentation.
const REPLACE_SCRIPT: &str = r"
local key = KEYS[1]
local n = #ARGV / 3
local targets = {}
for i = 1, n do
  local idx = tonumber(ARGV[3 * i - 2])
  local old = ARGV[3 * i - 1]
  if redis.call('LINDEX', key, idx) ~= old then
    local pos = redis.call('LPOS', key, old)
    if not pos then
      return {0, i - 1}
    end
    idx = pos
  end
  targets[i] = idx
end
for i = 1, n do
  redis.call('LSET', key, targets[i], ARGV[3 * i])
end
return {1, n}
";

impl RedisStore {
    /// The store at a `redis://` or `rediss://` URL. Nothing is connected until it is used.
    pub fn open(location: &str, options: RedisOptions) -> Result<RedisStore> {
        let described = redact(location);
        let bad = |why: &str| Error::config(format!("{described}: {why}"));
        let url = redis::parse_redis_url(location)
            .filter(|u| matches!(u.scheme(), "redis" | "rediss"))
            .ok_or_else(|| {
                bad("not a valid Redis URL; write redis://[user[:password]@]host[:port][/db][?key=NAME] (percent-encode special characters of the password)")
            })?;
        let mut key = None;
        for (k, v) in url.query_pairs() {
            match &*k {
                "key" => key = Some(v.into_owned()),
                "protocol" => {}
                other => {
                    return Err(bad(&format!(
                        "unknown parameter '{other}' (known: key, protocol)"
                    )));
                }
            }
        }
        let key = key.unwrap_or_else(|| DEFAULT_KEY.to_owned());
        if key.is_empty() {
            return Err(bad("key= is empty; name the list that holds the ring"));
        }
        let tls = url.scheme() == "rediss";
        let info = url
            .into_connection_info()
            .map_err(|e| bad(&scrub(&e.to_string(), location)))?;
        let client = match (&options.root_ca_pem, tls) {
            (Some(ca), true) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(ca.clone()),
                },
            ),
            _ => redis::Client::open(info),
        }
        .map_err(|e| bad(&scrub(&e.to_string(), location)))?;
        Ok(RedisStore {
            client,
            key,
            location: Zeroizing::new(location.to_owned()),
            described,
            options,
            tls,
        })
    }

    /// The list holding the ring.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// A new connection for one operation. Connections are not kept between operations: a
    /// multiplexed connection lives on the runtime that opened it, and a store may be used from
    /// several runtimes (or outlive one).
    async fn connection(&self) -> Result<MultiplexedConnection> {
        if self.tls {
            // The redis crate takes rustls' process-wide provider; one may already be installed.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(Some(self.options.response_timeout));
        // The connection timeout covers TCP and TLS; the handshake commands (AUTH, SELECT) are
        // bounded here as well.
        let connect = self
            .client
            .get_multiplexed_async_connection_with_config(&config);
        let limit = self.options.connect_timeout + self.options.response_timeout;
        match tokio::time::timeout(limit, connect).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(self.error(&e, "connect")),
            Err(_) => Err(self.timeout("connect", limit)),
        }
    }

    fn timeout(&self, what: &str, limit: Duration) -> Error {
        Error::new(
            ErrorKind::Cancelled,
            format!(
                "{}: no answer to {what} within {} s; check the host, port and firewall (and rediss:// for a TLS port)",
                self.described,
                limit.as_secs()
            ),
        )
    }

    /// A dpwrap error for a Redis error, without any credential.
    fn error(&self, e: &redis::RedisError, what: &str) -> Error {
        let detail = scrub(&e.to_string(), &self.location).to_lowercase();
        let code = e.code().unwrap_or("");
        let (kind, message) = if e.kind() == redis::ErrorKind::AuthenticationFailed
            || code == "WRONGPASS"
            || code == "NOAUTH"
        {
            (
                ErrorKind::Backend,
                "authentication failed: wrong user name or password, or the server needs one; put them in the URL (redis://user:password@host) through env:NAME".to_owned(),
            )
        } else if code == "NOPERM" {
            (
                ErrorKind::Backend,
                format!(
                    "the redis user may not run {what} on '{}' (ACL): it needs LRANGE, RPUSH, LINDEX, LPOS, LSET, TYPE and EVALSHA/EVAL on that key ({detail})",
                    self.key
                ),
            )
        } else if e.is_timeout() {
            (
                ErrorKind::Cancelled,
                format!(
                    "no answer to {what} in time ({detail}); check the host, port and firewall"
                ),
            )
        } else if e.is_connection_refusal() {
            (
                ErrorKind::Backend,
                format!(
                    "could not connect ({detail}); check the host and port, and that redis is running"
                ),
            )
        } else if e.is_io_error() || e.is_connection_dropped() {
            (
                ErrorKind::Backend,
                format!(
                    "{what} failed: {detail} (with rediss://, check the certificate; with redis://, that the port does not expect TLS)"
                ),
            )
        } else {
            (ErrorKind::Backend, format!("{what} failed: {detail}"))
        };
        Error::new(kind, format!("{}: {message}", self.described))
    }

    /// The error for a command that failed; a `WRONGTYPE` names the type the key holds.
    async fn command_error(
        &self,
        con: &mut MultiplexedConnection,
        e: redis::RedisError,
        what: &str,
    ) -> Error {
        if e.code() == Some("WRONGTYPE") {
            let kind: String = redis::cmd("TYPE")
                .arg(&self.key)
                .query_async(con)
                .await
                .unwrap_or_else(|_| "another type".to_owned());
            return Error::new(
                ErrorKind::Store,
                format!(
                    "{}: the redis key '{}' holds a {kind}, not a list; it is not a Data Protection key ring (name the ring's list with ?key=NAME)",
                    self.described, self.key
                ),
            );
        }
        self.error(&e, what)
    }
}

#[async_trait]
impl KeyStore for RedisStore {
    fn describe(&self) -> String {
        self.described.clone()
    }

    async fn read(&self) -> Result<Vec<Entry>> {
        let mut con = self.connection().await?;
        let max_item = Limits::default().max_input_bytes;
        let mut items: Vec<Zeroizing<Vec<u8>>> = Vec::new();
        let mut total = 0usize;
        loop {
            let start = items.len();
            let page: Vec<Vec<u8>> = match redis::cmd("LRANGE")
                .arg(&self.key)
                .arg(start)
                .arg(start + READ_PAGE - 1)
                .query_async(&mut con)
                .await
            {
                Ok(page) => page,
                Err(e) => return Err(self.command_error(&mut con, e, "LRANGE").await),
            };
            let full = page.len() == READ_PAGE;
            for (i, item) in page.into_iter().enumerate() {
                let item = Zeroizing::new(item);
                if item.len() > max_item {
                    return Err(Error::new(
                        ErrorKind::Limit,
                        format!(
                            "limit max_input_bytes ({max_item}) exceeded: item {} of list '{}' has {} bytes; this is not a key ring element",
                            start + i,
                            self.key,
                            item.len()
                        ),
                    ));
                }
                total = total.saturating_add(item.len());
                items.push(item);
            }
            // Empty or tiny items add almost nothing to `total` but each costs a Vec: their
            // number is bounded too (no ring element is shorter than MIN_ITEM_BYTES).
            if total > self.options.max_ring_bytes
                || items.len() > self.options.max_ring_bytes / MIN_ITEM_BYTES
            {
                return Err(Error::new(
                    ErrorKind::Limit,
                    format!(
                        "limit max_ring_bytes ({}) exceeded: the first {} items of list '{}' hold {total} bytes (each item counts at least {MIN_ITEM_BYTES}); point the location at the ring's list, or raise RedisOptions::max_ring_bytes for a ring this large",
                        self.options.max_ring_bytes,
                        items.len(),
                        self.key
                    ),
                ));
            }
            if !full {
                break;
            }
        }
        Ok(items
            .into_iter()
            .enumerate()
            .map(|(position, raw)| {
                let name = format!("item {position}");
                let element = xml::parse(&raw)
                    .map(|element| StoredElement::new(element, name.clone(), raw, position))
                    .map_err(|e| e.context(format!("{name} of list '{}'", self.key)));
                Entry { name, element }
            })
            .collect())
    }

    async fn append(&self, elements: &[Addition]) -> Result<()> {
        if elements.is_empty() {
            return Ok(());
        }
        let mut con = self.connection().await?;
        let items: Vec<Zeroizing<Vec<u8>>> = elements
            .iter()
            .map(|a| xml::to_secret_bytes(&a.element, WriteOptions::COMPACT))
            .collect();
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(&self.key);
        for item in &items {
            cmd.arg(item.as_slice());
        }
        match cmd.query_async::<i64>(&mut con).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.command_error(&mut con, e, "RPUSH").await),
        }
    }

    async fn replace(&self, changes: &[Change<'_>]) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut con = self.connection().await?;
        let script = redis::Script::new(REPLACE_SCRIPT);
        let news: Vec<Zeroizing<Vec<u8>>> = changes
            .iter()
            .map(|c| xml::to_secret_bytes(&c.new, WriteOptions::COMPACT))
            .collect();
        let mut done = 0usize;
        let mut start = 0usize;
        while start < changes.len() {
            let mut end = start;
            let mut bytes = 0usize;
            while let (Some(c), Some(n)) = (changes.get(end), news.get(end)) {
                let size = c.old.raw().len() + n.len();
                if end > start && bytes + size > self.options.replace_batch_bytes {
                    break;
                }
                bytes += size;
                end += 1;
            }
            let mut invocation = script.key(&self.key);
            for (c, n) in changes.iter().zip(&news).take(end).skip(start) {
                invocation
                    .arg(c.old.position())
                    .arg(c.old.raw())
                    .arg(n.as_slice());
            }
            let result: (i64, i64) = match invocation.invoke_async(&mut con).await {
                Ok(r) => r,
                Err(e) => return Err(self.command_error(&mut con, e, "the replace script").await),
            };
            match result {
                (1, _) => done = end,
                (_, missing) => {
                    let name = usize::try_from(missing)
                        .ok()
                        .and_then(|i| changes.get(start + i))
                        .map(|c| c.old.name().to_owned())
                        .unwrap_or_else(|| "an element".to_owned());
                    return Err(Error::new(
                        ErrorKind::Store,
                        format!(
                            "{}: {name} is no longer in list '{}' as it was read (changed or removed by someone else); {done} of {} elements were already replaced, the rest were not: load the ring again and retry",
                            self.described,
                            self.key,
                            changes.len()
                        ),
                    ));
                }
            }
            start = end;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_and_redacted() {
        let s = RedisStore::open(
            "redis://user:pa%40ss@127.0.0.1:6390/3?key=ring",
            RedisOptions::default(),
        )
        .unwrap();
        assert_eq!(s.key(), "ring");
        assert_eq!(s.describe(), "redis://user:***@127.0.0.1:6390/3?key=ring");
        assert!(!format!("{s:?}").contains("pa%40ss"));
        assert!(!format!("{s:?}").contains("pa@ss"));
        let d = RedisStore::open("redis://h", RedisOptions::default()).unwrap();
        assert_eq!(d.key(), DEFAULT_KEY);
        let e = RedisStore::open("redis://:pw@h/?kye=x", RedisOptions::default()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("pw@"), "{e}");
        let e = RedisStore::open("redis://:secretpw@h/notanumber", RedisOptions::default())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(!e.to_string().contains("secretpw"), "{e}");
    }
}
