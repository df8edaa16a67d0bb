//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 2617 with MD5 and
//! `qop=auth`).
//!
//! Nonces are stateless: `<issued-seconds-hex>.<md5(secret:issued)>`, so a
//! server checks them without remembering what it handed out and knows when
//! one is stale. Credentials come from the application through
//! [`CredentialStore`] as HA1 digests (`MD5(user:realm:password)`), so an
//! application can keep SIP secrets without storing them in clear, the way
//! SIP registrars usually do.

use md5::{Digest, Md5};

/// Where the endpoint asks for a user's credentials. Implemented by the
/// application (database, config file, …).
pub trait CredentialStore: Send + Sync {
    /// The HA1 of `username` in `realm` (lowercase hex of
    /// `MD5(username:realm:password)`, see [`ha1`]), or `None` if there is no
    /// such user in that realm.
    fn ha1(&self, username: &str, realm: &str) -> Option<String>;
}

/// `MD5(username:realm:password)` in lowercase hex: what a registrar stores
/// instead of the password (RFC 2617 §3.2.2.2).
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    md5_hex(&format!("{username}:{realm}:{password}"))
}

/// A fixed in-memory list of `(username, password)` pairs, for tests and
/// small deployments.
#[derive(Debug, Clone, Default)]
pub struct StaticCredentials(pub Vec<(String, String)>);

impl CredentialStore for StaticCredentials {
    fn ha1(&self, username: &str, realm: &str) -> Option<String> {
        self.0
            .iter()
            .find(|(u, _)| u == username)
            .map(|(u, p)| ha1(u, realm, p))
    }
}

fn md5_hex(s: &str) -> String {
    hex::encode(Md5::digest(s.as_bytes()))
}

/// Parsed `Authorization` / `Proxy-Authorization` (or challenge) parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DigestParams {
    /// `username`
    pub username: String,
    /// `realm`
    pub realm: String,
    /// `nonce`
    pub nonce: String,
    /// `uri`
    pub uri: String,
    /// `response`
    pub response: String,
    /// `algorithm` (only MD5 is accepted)
    pub algorithm: Option<String>,
    /// `cnonce`
    pub cnonce: Option<String>,
    /// `qop`
    pub qop: Option<String>,
    /// `nc`
    pub nc: Option<String>,
    /// `opaque`
    pub opaque: Option<String>,
}

impl DigestParams {
    /// Parses `Digest k=v, k="v", …`. `None` if the scheme is not Digest.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        let (scheme, rest) = value.split_once(|c: char| c.is_whitespace())?;
        if !scheme.eq_ignore_ascii_case("Digest") {
            return None;
        }
        let mut p = Self::default();
        for item in super::message::split_list(rest) {
            let Some((k, v)) = item.split_once('=') else {
                continue;
            };
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|s| s.strip_suffix('"'))
                .unwrap_or(v)
                .to_owned();
            match k.trim().to_ascii_lowercase().as_str() {
                "username" => p.username = v,
                "realm" => p.realm = v,
                "nonce" => p.nonce = v,
                "uri" => p.uri = v,
                "response" => p.response = v,
                "algorithm" => p.algorithm = Some(v),
                "cnonce" => p.cnonce = Some(v),
                "qop" => p.qop = Some(v),
                "nc" => p.nc = Some(v),
                "opaque" => p.opaque = Some(v),
                _ => {}
            }
        }
        Some(p)
    }
}

/// Computes the digest `response` value.
pub fn digest_response(
    username: &str,
    password: &str,
    realm: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    digest_response_ha1(&ha1(username, realm, password), method, uri, nonce, qop)
}

/// Computes the digest `response` value from a stored HA1.
pub fn digest_response_ha1(
    ha1: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    qop: Option<(&str, &str, &str)>,
) -> String {
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match qop {
        Some((qop, nc, cnonce)) => md5_hex(&format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")),
        None => md5_hex(&format!("{ha1}:{nonce}:{ha2}")),
    }
}

/// Builds an `Authorization` value answering a challenge (client side).
pub fn authorization_header(
    challenge: &DigestParams,
    username: &str,
    password: &str,
    method: &str,
    uri: &str,
    cnonce: &str,
) -> String {
    let qop_auth = challenge
        .qop
        .as_deref()
        .is_some_and(|q| q.split(',').any(|x| x.trim() == "auth"));
    let nc = "00000001";
    let response = digest_response(
        username,
        password,
        &challenge.realm,
        method,
        uri,
        &challenge.nonce,
        qop_auth.then_some(("auth", nc, cnonce)),
    );
    let mut h = format!(
        "Digest username=\"{username}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm=MD5",
        challenge.realm, challenge.nonce
    );
    if qop_auth {
        h.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{cnonce}\""));
    }
    if let Some(o) = &challenge.opaque {
        h.push_str(&format!(", opaque=\"{o}\""));
    }
    h
}

/// The outcome of checking credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Valid; the authenticated username.
    Ok(String),
    /// No or unusable credentials: challenge (stale=true if the nonce expired).
    Challenge {
        /// Whether the client's nonce was valid but expired.
        stale: bool,
    },
    /// Credentials present and wrong (answered 403 after a retry, or challenged again).
    Rejected,
}

/// Server side of digest: issues challenges, checks answers.
#[derive(Debug, Clone)]
pub struct DigestAuthenticator {
    realm: String,
    secret: String,
    nonce_ttl_secs: u64,
}

impl DigestAuthenticator {
    /// `secret` keys the nonces; `nonce_ttl_secs` bounds their age.
    pub fn new(realm: impl Into<String>, secret: impl Into<String>, nonce_ttl_secs: u64) -> Self {
        Self {
            realm: realm.into(),
            secret: secret.into(),
            nonce_ttl_secs,
        }
    }

    /// The realm.
    pub fn realm(&self) -> &str {
        &self.realm
    }

    fn nonce(&self, issued: u64) -> String {
        format!(
            "{issued:x}.{}",
            md5_hex(&format!("{}:{issued:x}", self.secret))
        )
    }

    /// A `WWW-Authenticate` value with a fresh nonce. `now_secs` is any
    /// monotonic seconds count the caller keeps consistent.
    pub fn challenge(&self, now_secs: u64, stale: bool) -> String {
        let mut c = format!(
            "Digest realm=\"{}\", nonce=\"{}\", algorithm=MD5, qop=\"auth\"",
            self.realm,
            self.nonce(now_secs)
        );
        if stale {
            c.push_str(", stale=true");
        }
        c
    }

    /// Checks an `Authorization` header value for `method`.
    pub fn verify(
        &self,
        now_secs: u64,
        method: &str,
        authorization: Option<&str>,
        store: &dyn CredentialStore,
    ) -> AuthOutcome {
        let Some(p) = authorization.and_then(DigestParams::parse) else {
            return AuthOutcome::Challenge { stale: false };
        };
        if p.realm != self.realm
            || p.algorithm
                .as_deref()
                .is_some_and(|a| !a.eq_ignore_ascii_case("MD5"))
        {
            return AuthOutcome::Challenge { stale: false };
        }
        let Some(issued) = p
            .nonce
            .split_once('.')
            .and_then(|(t, _)| u64::from_str_radix(t, 16).ok())
        else {
            return AuthOutcome::Challenge { stale: false };
        };
        if self.nonce(issued) != p.nonce {
            return AuthOutcome::Challenge { stale: false };
        }
        let Some(ha1) = store.ha1(&p.username, &self.realm) else {
            return AuthOutcome::Rejected;
        };
        let qop = match (&p.qop, &p.nc, &p.cnonce) {
            (Some(q), Some(nc), Some(cn)) if q == "auth" => {
                Some((q.as_str(), nc.as_str(), cn.as_str()))
            }
            (None, _, _) => None,
            _ => return AuthOutcome::Rejected,
        };
        let expected =
            digest_response_ha1(&ha1.to_ascii_lowercase(), method, &p.uri, &p.nonce, qop);
        if !expected.eq_ignore_ascii_case(&p.response) {
            return AuthOutcome::Rejected;
        }
        if now_secs.saturating_sub(issued) > self.nonce_ttl_secs || issued > now_secs {
            return AuthOutcome::Challenge { stale: true };
        }
        AuthOutcome::Ok(p.username)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_example_response() {
        // RFC 2617 §3.5 example (HTTP, but the same computation).
        let r = digest_response(
            "Mufasa",
            "Circle Of Life",
            "testrealm@host.com",
            "GET",
            "/dir/index.html",
            "dcd98b7102dd2f0e8b11d0f600bfb0c093",
            Some(("auth", "00000001", "0a4f113b")),
        );
        assert_eq!(r, "6629fae49393a05397450978507c4ef1");
        assert_eq!(
            ha1("Mufasa", "testrealm@host.com", "Circle Of Life"),
            "939e7578ed9e3c518a452acee763bce9"
        );
    }

    #[test]
    fn challenge_answer_verify_round_trip() {
        let auth = DigestAuthenticator::new("sb.test", "secret", 300);
        let store = StaticCredentials(vec![("1001".into(), "pw".into())]);
        let ch = DigestParams::parse(&auth.challenge(1000, false)).unwrap();
        let good = authorization_header(&ch, "1001", "pw", "REGISTER", "sip:sb.test", "abc");
        assert_eq!(
            auth.verify(1010, "REGISTER", Some(&good), &store),
            AuthOutcome::Ok("1001".into())
        );
        let bad = authorization_header(&ch, "1001", "wrong", "REGISTER", "sip:sb.test", "abc");
        assert_eq!(
            auth.verify(1010, "REGISTER", Some(&bad), &store),
            AuthOutcome::Rejected
        );
        assert_eq!(
            auth.verify(1010, "INVITE", Some(&good), &store),
            AuthOutcome::Rejected,
            "response binds the method"
        );
        let unknown = authorization_header(&ch, "999", "pw", "REGISTER", "sip:sb.test", "abc");
        assert_eq!(
            auth.verify(1010, "REGISTER", Some(&unknown), &store),
            AuthOutcome::Rejected
        );
        assert_eq!(
            auth.verify(2000, "REGISTER", Some(&good), &store),
            AuthOutcome::Challenge { stale: true }
        );
        assert_eq!(
            auth.verify(1010, "REGISTER", None, &store),
            AuthOutcome::Challenge { stale: false }
        );
        let forged = good.replace(&ch.nonce, "3e8.00000000000000000000000000000000");
        assert_eq!(
            auth.verify(1010, "REGISTER", Some(&forged), &store),
            AuthOutcome::Challenge { stale: false }
        );
    }

    #[test]
    fn parses_odd_authorization_spacing() {
        let p = DigestParams::parse(
            "Digest  username = \"a,b\" ,realm=\"r\",nonce=\"n\", uri=\"sip:x\",response=\"00\"",
        )
        .unwrap();
        assert_eq!(p.username, "a,b");
        assert_eq!(p.uri, "sip:x");
        assert!(DigestParams::parse("Basic abc").is_none());
    }
}
