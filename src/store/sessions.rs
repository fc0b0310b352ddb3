//! Command-centre sign-ins: a session is a hash keyed by the SHA-256 of its cookie (the cookie
//! itself is never stored), holding the SHA-256 of the token that signed in and the session's
//! CSRF secret, expiring on its own after `http.session_hours`. Kept in Redis, so any instance
//! serves any page. Failed sign-ins are counted per client address in a short window.

use super::{Result, Store};

/// What a session holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// SHA-256 (hex) of the token that signed in: looked up in the configured tokens on every
    /// request, so a token removed from the configuration ends its sessions.
    pub token_hash: String,
    /// The secret every form of this session carries (CSRF).
    pub csrf: String,
}

impl Store {
    /// Stores a new session for `ttl_secs`. Idempotent: the same session written twice is one.
    pub async fn session_create(
        &self,
        id_hash: &str,
        s: &Session,
        ttl_secs: u64,
        audit: &super::audit::AuditEntry,
    ) -> Result<()> {
        let key = self.keys.session(id_hash);
        let mut p = redis::pipe();
        super::audit::push(&mut p, &self.keys.audit(), audit, "ok");
        p.atomic()
            .cmd("HSET")
            .arg(&key)
            .arg("token")
            .arg(&s.token_hash)
            .arg("csrf")
            .arg(&s.csrf)
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(ttl_secs.max(60))
            .ignore();
        // Once: its audit entry is an `XADD *`.
        self.pipe_once(&p).await
    }

    /// The session whose cookie hashes to `id_hash`, unless it expired or ended.
    pub async fn session(&self, id_hash: &str) -> Result<Option<Session>> {
        let (token, csrf): (Option<String>, Option<String>) = self
            .cmd(
                redis::cmd("HMGET")
                    .arg(self.keys.session(id_hash))
                    .arg("token")
                    .arg("csrf"),
            )
            .await?;
        Ok(match (token, csrf) {
            (Some(token_hash), Some(csrf)) => Some(Session { token_hash, csrf }),
            _ => None,
        })
    }

    /// Ends a session (signing out). Idempotent.
    pub async fn session_end(&self, id_hash: &str, audit: &super::audit::AuditEntry) -> Result<()> {
        let mut p = redis::pipe();
        p.atomic()
            .cmd("DEL")
            .arg(self.keys.session(id_hash))
            .ignore();
        super::audit::push(&mut p, &self.keys.audit(), audit, "ok");
        self.pipe_once(&p).await
    }

    /// Counts a failed sign-in from `addr` in a window of `window_secs` (which starts at the
    /// first failure); answers the count so far. Not retried: a retry after a lost answer
    /// would count one failure twice.
    pub async fn login_failure(&self, addr: &str, window_secs: u64) -> Result<u64> {
        let key = self.keys.login_failures(addr);
        let mut p = redis::pipe();
        p.atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("EXPIRE")
            .arg(&key)
            .arg(window_secs)
            .arg("NX")
            .ignore();
        let (n,): (u64,) = self.pipe_once(&p).await?;
        Ok(n)
    }

    /// Failed sign-ins from `addr` in the current window.
    pub async fn login_failures(&self, addr: &str) -> Result<u64> {
        let n: Option<u64> = self
            .cmd(redis::cmd("GET").arg(self.keys.login_failures(addr)))
            .await?;
        Ok(n.unwrap_or(0))
    }
}
