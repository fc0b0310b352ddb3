//! Bearer tokens: each has a role and a region scope. A token acts on its scope region and
//! everything below it.

use super::AppState;
use super::error::ApiError;
use crate::domain::access::Role;
use crate::domain::region::RegionCode;
use crate::seed::TokenDef;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's name (recorded as `raised_by`).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// Its scope region.
    pub scope: RegionCode,
    /// The request it came with (for the audit log).
    pub request: RequestMeta,
}

/// A request's id and client address, set for every request (`x-request-id`).
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub id: String,
    pub addr: String,
}

impl Caller {
    /// An audit entry of `action` on `target` (in `region`) by this caller, now.
    pub fn audit(
        &self,
        now: crate::clock::Millis,
        action: &str,
        target: &str,
        region: &str,
    ) -> crate::store::audit::AuditEntry {
        crate::store::audit::AuditEntry {
            at: now,
            actor: self.name.clone(),
            role: self.role.as_str().to_string(),
            scope: self.scope.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            region: region.to_string(),
            request: self.request.id.clone(),
            addr: self.request.addr.clone(),
            detail: String::new(),
        }
    }
}

/// Hex SHA-256 of a token.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Indexes the configured tokens by hash, so plain and hashed tokens are looked up alike and
/// the comparison never runs over the token text itself.
pub fn index(tokens: &[TokenDef]) -> HashMap<String, TokenDef> {
    tokens
        .iter()
        .map(|t| {
            let h = t
                .token_sha256
                .clone()
                .unwrap_or_else(|| token_hash(t.token.as_deref().unwrap_or("")));
            (h, t.clone())
        })
        .collect()
}

impl Caller {
    /// Fails with 403 unless the caller's scope contains `region`.
    pub fn require_scope(&self, st: &AppState, region: &RegionCode) -> Result<(), ApiError> {
        if st.ctx.seed.regions.contains(&self.scope, region) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "region {region} is outside this token's scope {}",
                self.scope
            )))
        }
    }

    /// Whether the caller's scope contains `region`.
    pub fn sees(&self, st: &AppState, region: &str) -> bool {
        RegionCode::parse(region)
            .map(|r| st.ctx.seed.regions.contains(&self.scope, &r))
            .unwrap_or(false)
    }

    /// Fails with 403 unless the role may manage the registry and rosters.
    pub fn require_coordinator(&self) -> Result<(), ApiError> {
        if matches!(self.role, Role::Coordinator | Role::Admin) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this needs a coordinator (or admin) token".into(),
            ))
        }
    }

    /// Fails with 403 unless the caller's scope contains `region` (a code string).
    pub fn require_scope_str(&self, st: &AppState, region: &str) -> Result<(), ApiError> {
        if self.sees(st, region) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "region {region} is outside this token's scope {}",
                self.scope
            )))
        }
    }

    /// Fails with 403 unless the role may command.
    pub fn require_commander(&self) -> Result<(), ApiError> {
        if self.role.may_command() {
            Ok(())
        } else {
            Err(ApiError::Forbidden(
                "this needs a commander (or admin) token".into(),
            ))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Caller, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or(ApiError::Unauthorized)?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or(ApiError::Unauthorized)?;
        let def = st
            .tokens
            .get(&token_hash(token))
            .ok_or(ApiError::Unauthorized)?;
        Ok(Caller {
            name: def.name.clone(),
            role: def.role,
            scope: def.scope.clone(),
            request: parts
                .extensions
                .get::<RequestMeta>()
                .cloned()
                .unwrap_or_default(),
        })
    }
}

/// A caller whose role may command (raise, upgrade, stand down); 403 otherwise. As an
/// extractor it runs before the body is read, so a viewer is told "forbidden", not what is
/// wrong with a body it may not send.
#[derive(Debug, Clone)]
pub struct Commander(pub Caller);

impl FromRequestParts<AppState> for Commander {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Commander, ApiError> {
        let c = Caller::from_request_parts(parts, st).await?;
        c.require_commander()?;
        Ok(Commander(c))
    }
}

/// A caller whose role may manage the registry and rosters; 403 otherwise (see [`Commander`]).
#[derive(Debug, Clone)]
pub struct Coordinator(pub Caller);

impl FromRequestParts<AppState> for Coordinator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Coordinator, ApiError> {
        let c = Caller::from_request_parts(parts, st).await?;
        c.require_coordinator()?;
        Ok(Coordinator(c))
    }
}
