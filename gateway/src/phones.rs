//! Agents' SIP phones: each staff user may have one SIP account on this
//! installation's registrar, and registered phones are recorded so every
//! node knows where an agent's phone can be reached.
//!
//! A SIP account is a username and a secret of its own, separate from the
//! sign-in password: the web password is kept as an argon2 hash, which SIP
//! digest authentication cannot use. The secret is generated, shown once to
//! the admin who sets it, and stored only as its HA1 digest
//! (`MD5(username:realm:secret)`), as SIP registrars usually keep it. The
//! HA1 binds the realm, so changing `sip_domain` invalidates every SIP
//! account; the registrar logs how many accounts belong to another realm.
//!
//! [`Phones`] is the registrar's view of the accounts: an in-memory map the
//! sans-IO endpoint reads synchronously ([`CredentialStore`]), reloaded from
//! the database after every change made through this node and every few
//! seconds (changes made through other nodes).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde::Serialize;
use sqlx::Row;
use switchboard_bus::AgentId;
use switchboard_voice::sip::auth::{CredentialStore, ha1};
use utoipa::ToSchema;

use crate::db::{Db, DbError, ms};

/// Longest SIP username accepted.
pub const MAX_USERNAME: usize = 32;

/// A user's SIP account, without its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SipAccount {
    /// The user it belongs to.
    #[schema(value_type = String, format = Uuid)]
    pub user_id: AgentId,
    /// SIP username (the user part of the phone's address of record).
    pub username: String,
    /// Digest realm the secret was set for (the registrar's domain).
    pub realm: String,
    /// When the secret was last set.
    pub updated_at: DateTime<Utc>,
}

/// Where a registered phone can be reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct Registration {
    /// Address of record, `username@domain`.
    pub aor: String,
    /// The contact URI the phone registered.
    pub contact: String,
    /// SIP username.
    pub username: String,
    /// Where the REGISTER came from (`ip:port`; phones behind NAT are reached here).
    pub source: String,
    /// `udp` or `tcp`.
    pub transport: String,
    /// The node whose registrar holds the binding.
    pub node: String,
    /// When it (last) registered.
    pub registered_at: DateTime<Utc>,
    /// When the binding lapses unless the phone registers again.
    pub expires_at: DateTime<Utc>,
}

/// Why a SIP username is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UsernameError {
    /// Empty or too long.
    #[error("a SIP username is 1-{MAX_USERNAME} characters")]
    Length,
    /// Characters a phone's account settings or a SIP URI would mangle.
    #[error("a SIP username uses letters, digits, '.', '-' and '_' only")]
    Characters,
}

/// Checks a SIP username: `[A-Za-z0-9._-]{1,32}`, which every phone accepts
/// and needs no escaping in a SIP URI.
pub fn check_username(username: &str) -> Result<(), UsernameError> {
    if username.is_empty() || username.len() > MAX_USERNAME {
        return Err(UsernameError::Length);
    }
    if !username
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err(UsernameError::Characters);
    }
    Ok(())
}

/// A username for a user who has none yet: the e-mail's local part, keeping
/// the characters [`check_username`] allows.
pub fn default_username(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let mut name: String = local
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .take(MAX_USERNAME)
        .collect();
    if name.is_empty() {
        name.push_str("agent");
    }
    name
}

/// A fresh SIP secret: 20 characters from an alphabet without look-alikes
/// (about 115 bits), easy to type into a desk phone.
pub fn new_secret() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..20)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

fn account_from_row(row: &sqlx::any::AnyRow) -> Result<SipAccount, DbError> {
    let user: String = row.try_get("user_id")?;
    Ok(SipAccount {
        user_id: user
            .parse()
            .map_err(|_| DbError::Corrupt(format!("sip account user id {user}")))?,
        username: row.try_get("username")?,
        realm: row.try_get("realm")?,
        updated_at: time(row.try_get("updated_at")?),
    })
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

impl Db {
    /// Sets (or replaces) a user's SIP account. A username another user
    /// holds is a [`DbError::Conflict`].
    pub async fn set_sip_account(
        &self,
        user: AgentId,
        username: &str,
        realm: &str,
        ha1: &str,
    ) -> Result<SipAccount, DbError> {
        let now = Utc::now();
        let mut tx = self.pool().begin().await?;
        // A renamed account's phones registered under the old name.
        sqlx::query(
            "DELETE FROM sip_registrations WHERE username IN \
             (SELECT username FROM sip_accounts WHERE user_id = $1 AND username <> $2)",
        )
        .bind(user.to_string())
        .bind(username)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO sip_accounts (user_id, username, realm, ha1, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (user_id) DO UPDATE SET username = excluded.username, \
             realm = excluded.realm, ha1 = excluded.ha1, updated_at = excluded.updated_at",
        )
        .bind(user.to_string())
        .bind(username)
        .bind(realm)
        .bind(ha1)
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(SipAccount {
            user_id: user,
            username: username.to_owned(),
            realm: realm.to_owned(),
            updated_at: time(ms(now)),
        })
    }

    /// Removes a user's SIP account and its registrations; false if there was none.
    pub async fn remove_sip_account(&self, user: AgentId) -> Result<bool, DbError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "DELETE FROM sip_registrations WHERE username IN \
             (SELECT username FROM sip_accounts WHERE user_id = $1)",
        )
        .bind(user.to_string())
        .execute(&mut *tx)
        .await?;
        let gone = sqlx::query("DELETE FROM sip_accounts WHERE user_id = $1")
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(gone > 0)
    }

    /// A user's SIP account.
    pub async fn sip_account(&self, user: AgentId) -> Result<Option<SipAccount>, DbError> {
        let row = sqlx::query(
            "SELECT user_id, username, realm, updated_at FROM sip_accounts WHERE user_id = $1",
        )
        .bind(user.to_string())
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(account_from_row).transpose()
    }

    /// Every SIP account.
    pub async fn sip_accounts(&self) -> Result<Vec<SipAccount>, DbError> {
        let rows = sqlx::query(
            "SELECT user_id, username, realm, updated_at FROM sip_accounts ORDER BY username",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(account_from_row).collect()
    }

    /// `(username, realm, ha1)` of every active user's SIP account: what the
    /// registrar checks against. Deactivated users' phones cannot register.
    pub async fn sip_credentials(&self) -> Result<Vec<(String, String, String)>, DbError> {
        let rows = sqlx::query(
            "SELECT a.username, a.realm, a.ha1 FROM sip_accounts a \
             JOIN users u ON u.id = a.user_id WHERE u.active = 1",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("username")?,
                    r.try_get("realm")?,
                    r.try_get("ha1")?,
                ))
            })
            .collect()
    }

    /// Records (or refreshes) a registration binding.
    pub async fn put_registration(&self, r: &Registration) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO sip_registrations \
             (aor, contact, username, source, transport, node, registered_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (aor, contact) DO UPDATE SET username = excluded.username, \
             source = excluded.source, transport = excluded.transport, node = excluded.node, \
             registered_at = excluded.registered_at, expires_at = excluded.expires_at",
        )
        .bind(&r.aor)
        .bind(&r.contact)
        .bind(&r.username)
        .bind(&r.source)
        .bind(&r.transport)
        .bind(&r.node)
        .bind(ms(r.registered_at))
        .bind(ms(r.expires_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Forgets a binding (the phone unregistered or it expired).
    pub async fn remove_registration(&self, aor: &str, contact: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sip_registrations WHERE aor = $1 AND contact = $2")
            .bind(aor)
            .bind(contact)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Forgets every binding a node held (its registrar starts empty).
    pub async fn clear_node_registrations(&self, node: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM sip_registrations WHERE node = $1")
            .bind(node)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Bindings that have not lapsed at `now`.
    pub async fn registrations(&self, now: DateTime<Utc>) -> Result<Vec<Registration>, DbError> {
        let rows = sqlx::query(
            "SELECT * FROM sip_registrations WHERE expires_at > $1 ORDER BY username, contact",
        )
        .bind(ms(now))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Registration {
                    aor: r.try_get("aor")?,
                    contact: r.try_get("contact")?,
                    username: r.try_get("username")?,
                    source: r.try_get("source")?,
                    transport: r.try_get("transport")?,
                    node: r.try_get("node")?,
                    registered_at: time(r.try_get("registered_at")?),
                    expires_at: time(r.try_get("expires_at")?),
                })
            })
            .collect()
    }
}

/// The registrar's credentials: HA1 per username for one realm, read by the
/// SIP endpoint without touching the database.
#[derive(Debug, Clone)]
pub struct Phones {
    realm: String,
    ha1s: Arc<RwLock<HashMap<String, String>>>,
}

impl Phones {
    /// Empty credentials for `realm`; fill them with [`Phones::reload`].
    pub fn new(realm: impl Into<String>) -> Self {
        Self {
            realm: realm.into(),
            ha1s: Arc::default(),
        }
    }

    /// The digest realm (the registrar's domain).
    pub fn realm(&self) -> &str {
        &self.realm
    }

    /// How many accounts can register now.
    pub fn len(&self) -> usize {
        self.ha1s.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether no account can register.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Re-reads the accounts of active users. Returns how many accounts
    /// were skipped because their secret was set for another realm.
    pub async fn reload(&self, db: &Db) -> Result<usize, DbError> {
        let rows = db.sip_credentials().await?;
        let mut other_realm = 0;
        let map: HashMap<String, String> = rows
            .into_iter()
            .filter_map(|(user, realm, ha1)| {
                if realm == self.realm {
                    Some((user, ha1))
                } else {
                    other_realm += 1;
                    None
                }
            })
            .collect();
        if let Ok(mut m) = self.ha1s.write() {
            *m = map;
        }
        Ok(other_realm)
    }

    /// The username to provision for `user` (`email` is theirs): the one
    /// asked for, else the current one, else the e-mail's local part.
    pub async fn username_for(
        db: &Db,
        user: AgentId,
        email: &str,
        asked: Option<&str>,
    ) -> Result<String, DbError> {
        Ok(match asked {
            Some(u) => u.trim().to_string(),
            None => match db.sip_account(user).await? {
                Some(a) => a.username,
                None => default_username(email),
            },
        })
    }

    /// Creates or replaces `user`'s SIP account with a fresh secret and
    /// returns the account and the secret (shown once, never stored).
    pub async fn provision(
        &self,
        db: &Db,
        user: AgentId,
        username: &str,
    ) -> Result<(SipAccount, String), DbError> {
        let secret = new_secret();
        let account = db
            .set_sip_account(
                user,
                username,
                &self.realm,
                &ha1(username, &self.realm, &secret),
            )
            .await?;
        if let Err(e) = self.reload(db).await {
            tracing::warn!(error = %e, "SIP accounts not reloaded; the registrar picks the change up within seconds");
        }
        Ok((account, secret))
    }
}

impl CredentialStore for Phones {
    fn ha1(&self, username: &str, realm: &str) -> Option<String> {
        if realm != self.realm {
            return None;
        }
        self.ha1s.read().ok()?.get(username).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(check_username("1001").is_ok());
        assert!(check_username("nico.b-2_x").is_ok());
        assert_eq!(check_username(""), Err(UsernameError::Length));
        assert_eq!(check_username(&"a".repeat(33)), Err(UsernameError::Length));
        assert_eq!(check_username("nico@x"), Err(UsernameError::Characters));
        assert_eq!(check_username("a b"), Err(UsernameError::Characters));
        assert_eq!(check_username("ñ"), Err(UsernameError::Characters));
        assert_eq!(default_username("Nico.B+sip@example.com"), "Nico.Bsip");
        assert_eq!(default_username("+++@example.com"), "agent");
        assert!(check_username(&default_username(&format!("{}@x.io", "z".repeat(60)))).is_ok());
    }

    #[test]
    fn secrets_are_fresh_and_typeable() {
        let a = new_secret();
        let b = new_secret();
        assert_eq!(a.len(), 20);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert!(!a.contains(['0', 'O', 'l', '1', 'I']));
    }

    #[test]
    fn credentials_answer_for_their_realm_only() {
        let phones = Phones::new("pbx.example");
        phones
            .ha1s
            .write()
            .unwrap()
            .insert("1001".into(), ha1("1001", "pbx.example", "pw"));
        assert_eq!(
            phones.ha1("1001", "pbx.example"),
            Some(ha1("1001", "pbx.example", "pw"))
        );
        assert_eq!(phones.ha1("1001", "other"), None);
        assert_eq!(phones.ha1("1002", "pbx.example"), None);
    }
}
