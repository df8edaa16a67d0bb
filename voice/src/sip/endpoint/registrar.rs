//! The registrar half of the endpoint: REGISTER with digest authentication
//! against the application's [`CredentialStore`](crate::sip::auth::CredentialStore),
//! bindings per address of record with expiry, and the digest check INVITEs
//! use when a trunk or phone must authenticate.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::{Binding, Endpoint, Event, TimerRef, Transport};
use crate::sip::auth::AuthOutcome;
use crate::sip::message::{NameAddr, Request, Response, reason_phrase};
use crate::sip::transaction::TxKey;

impl Endpoint {
    /// Checks a request's digest credentials: the authenticated username, or
    /// the response to send (401 with a fresh challenge, 403 when wrong or
    /// when no credential store is configured).
    pub(super) fn authenticate(
        &mut self,
        now: Instant,
        method: &str,
        req: &Request,
    ) -> Result<String, Response> {
        let Some(store) = self.cfg.credentials.clone() else {
            return Err(self.with_common(req.response(403, "Forbidden", None)));
        };
        let outcome = self.auth.verify(
            self.now_secs(now),
            method,
            req.headers.get("Authorization"),
            store.as_ref(),
        );
        match outcome {
            AuthOutcome::Ok(user) => Ok(user),
            AuthOutcome::Challenge { stale } => {
                let tag = self.random_token();
                let mut resp = self.with_common(req.response(401, "Unauthorized", Some(&tag)));
                resp.headers.push(
                    "WWW-Authenticate",
                    self.auth.challenge(self.now_secs(now), stale),
                );
                Err(resp)
            }
            AuthOutcome::Rejected => Err(self.with_common(req.response(403, "Forbidden", None))),
        }
    }

    /// A REGISTER: authenticate, check the address of record is the
    /// user's own, then add, refresh or remove bindings (`*` with
    /// `Expires: 0` removes all) and answer 200 with the current bindings.
    pub(super) fn on_register(
        &mut self,
        now: Instant,
        transport: Transport,
        from: SocketAddr,
        key: &TxKey,
        req: &Request,
    ) {
        let user = match self.authenticate(now, "REGISTER", req) {
            Ok(u) => u,
            Err(resp) => {
                self.server_tx_reply(now, transport, from, key, req, &resp);
                return;
            }
        };
        let Some(to) = req.to() else {
            return;
        };
        if to.uri.user.as_deref() != Some(user.as_str()) {
            let resp =
                self.with_common(req.response(403, "Forbidden: AOR does not match user", None));
            self.server_tx_reply(now, transport, from, key, req, &resp);
            return;
        }
        let aor = format!("{}@{}", user, to.uri.host);
        let default_expires: u32 = req
            .headers
            .get("Expires")
            .and_then(|e| e.parse().ok())
            .unwrap_or(3600);
        let contacts = req.headers.values("Contact");
        let mut removed = Vec::new();
        if contacts.iter().any(|c| c == "*") {
            if contacts.len() != 1 || default_expires != 0 {
                let resp = self.with_common(req.response(400, "Bad wildcard Contact", None));
                self.server_tx_reply(now, transport, from, key, req, &resp);
                return;
            }
            removed.extend(self.bindings.remove(&aor).unwrap_or_default());
        } else {
            let mut updates = Vec::new();
            for c in &contacts {
                let Some(na) = NameAddr::parse(c) else {
                    let resp = self.with_common(req.response(400, "Bad Contact", None));
                    self.server_tx_reply(now, transport, from, key, req, &resp);
                    return;
                };
                let expires = na
                    .param("expires")
                    .and_then(|e| e.parse().ok())
                    .unwrap_or(default_expires);
                if expires != 0 && expires < self.cfg.min_expires {
                    let mut resp = self.with_common(req.response(423, reason_phrase(423), None));
                    resp.headers
                        .push("Min-Expires", self.cfg.min_expires.to_string());
                    self.server_tx_reply(now, transport, from, key, req, &resp);
                    return;
                }
                updates.push((na.uri.to_string(), expires.min(self.cfg.max_expires)));
            }
            let list = self.bindings.entry(aor.clone()).or_default();
            for (contact, expires) in updates {
                list.retain(|b| {
                    if b.contact == contact {
                        removed.push(b.clone());
                        false
                    } else {
                        true
                    }
                });
                if expires > 0 {
                    let b = Binding {
                        contact: contact.clone(),
                        source: from,
                        transport,
                        expires_at: now + Duration::from_secs(expires.into()),
                    };
                    removed.retain(|r| r.contact != contact);
                    list.push(b.clone());
                    self.events.push_back(Event::Registered {
                        aor: aor.clone(),
                        binding: b,
                    });
                }
            }
            if list.is_empty() {
                self.bindings.remove(&aor);
            }
        }
        for b in removed {
            self.events.push_back(Event::Unregistered {
                aor: aor.clone(),
                contact: b.contact,
            });
        }
        let tag = self.random_token();
        let mut resp = self.with_common(req.response(200, "OK", Some(&tag)));
        for b in self.bindings(&aor) {
            let left = b.expires_at.saturating_duration_since(now).as_secs();
            resp.headers
                .push("Contact", format!("<{}>;expires={left}", b.contact));
        }
        self.server_tx_reply(now, transport, from, key, req, &resp);
        self.schedule(TimerRef::Registrar);
    }

    /// Expires lapsed bindings (each reported as [`Event::Unregistered`]).
    pub(super) fn fire_registrar(&mut self, now: Instant) {
        let mut expired = Vec::new();
        for (aor, list) in &mut self.bindings {
            list.retain(|b| {
                if b.expires_at <= now {
                    expired.push((aor.clone(), b.contact.clone()));
                    false
                } else {
                    true
                }
            });
        }
        self.bindings.retain(|_, v| !v.is_empty());
        for (aor, contact) in expired {
            self.events.push_back(Event::Unregistered { aor, contact });
        }
        self.schedule(TimerRef::Registrar);
    }
}
