//! Bearer tokens: who is calling, and whether they may call this route.
//!
//! A token is hashed with sha256 and compared, in constant time, with the
//! operator's hash and every tenant's hash — all of them, with no early
//! exit, so the time taken says nothing about which (if any) matched.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::error;
use crate::admin::AdminState;
use crate::config::Tenant;

/// Who a valid token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    Tenant(String),
}

/// Why a request was refused.
#[derive(Debug)]
pub(super) enum Refusal {
    /// No token, or one that matches nobody: 401.
    Unauthenticated(&'static str),
    /// A tenant token on an operator endpoint: 403.
    Forbidden,
    /// A tenant that doesn't exist or isn't the caller's: 404, the same
    /// body either way.
    NoTenant(String),
}

impl Refusal {
    pub(super) fn response(&self) -> Response {
        match self {
            Refusal::Unauthenticated(why) => {
                let mut r = error(StatusCode::UNAUTHORIZED, why);
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                r
            }
            Refusal::Forbidden => error(
                StatusCode::FORBIDDEN,
                "this endpoint needs the operator token",
            ),
            Refusal::NoTenant(id) => no_tenant(id),
        }
    }
}

/// The one answer for "no such tenant" and "not your tenant".
pub(super) fn no_tenant(id: &str) -> Response {
    error(StatusCode::NOT_FOUND, format!("no tenant `{id}`"))
}

/// The bearer token of a request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// A configured hash as bytes; anything else (never valid config) as a
/// value no sha256 output is compared equal to.
fn decode(hex_hash: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(hex_hash, &mut out).ok()?;
    Some(out)
}

/// Resolves the request's token against the operator hash and `tenants`.
pub(super) fn authenticate(
    headers: &HeaderMap,
    operator: Option<&str>,
    tenants: impl IntoIterator<Item = Tenant>,
) -> Result<Principal, Refusal> {
    let token = bearer(headers).ok_or(Refusal::Unauthenticated(
        "missing bearer token (Authorization: Bearer <token>)",
    ))?;
    let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
    // Candidates: the operator first, then tenants, so that if a tenant
    // shares the operator's hash the lesser right wins.
    let mut candidates: Vec<(Principal, [u8; 32])> = Vec::new();
    if let Some(h) = operator.and_then(decode) {
        candidates.push((Principal::Operator, h));
    }
    for t in tenants {
        if let Some(h) = t.token_sha256.as_deref().and_then(decode) {
            candidates.push((Principal::Tenant(t.id), h));
        }
    }
    // Index + 1 of the last match; 0 = none. Every candidate is compared.
    let mut matched = 0u32;
    for (i, (_, hash)) in candidates.iter().enumerate() {
        let eq = hash.ct_eq(&digest);
        matched = u32::conditional_select(&matched, &(i as u32 + 1), eq);
    }
    match matched {
        0 => Err(Refusal::Unauthenticated("invalid token")),
        n => Ok(candidates.swap_remove(n as usize - 1).0),
    }
}

fn caller(parts: &Parts, state: &AdminState) -> Result<Principal, Refusal> {
    let tenants = state
        .modules
        .as_ref()
        .map(|r| r.tenants().into_values().collect::<Vec<_>>())
        .unwrap_or_default();
    authenticate(
        &parts.headers,
        state.api.operator_token_sha256.as_deref(),
        tenants,
    )
}

/// Whether the request may see what operator endpoints show: with an
/// operator token configured, only its bearer; without one, everyone.
pub(crate) fn sees_operator_detail(headers: &HeaderMap, state: &AdminState) -> bool {
    match state.api.operator_token_sha256.as_deref() {
        None => true,
        Some(hash) => matches!(
            authenticate(headers, Some(hash), Vec::new()),
            Ok(Principal::Operator)
        ),
    }
}

/// In front of the operator endpoints: with an operator token configured,
/// only it passes; without one, everyone does (the single-tenant default).
pub(super) async fn require_operator(
    State(state): State<AdminState>,
    request: Request,
    next: Next,
) -> Response {
    if state.api.operator_token_sha256.is_none() {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    match caller(&parts, &state) {
        Ok(Principal::Operator) => next.run(Request::from_parts(parts, body)).await,
        Ok(Principal::Tenant(_)) => Refusal::Forbidden.response(),
        Err(r) => r.response(),
    }
}

/// A caller with a valid token (tenant endpoints without a `{tenant}`).
pub(super) struct Caller(pub Principal);

impl FromRequestParts<AdminState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Response> {
        caller(parts, state).map(Caller).map_err(|r| r.response())
    }
}

/// A caller allowed on the `{tenant}` of the path, and that tenant: the
/// operator, or the tenant itself. Checked before anything else the
/// handler does (its body is not read before).
pub(super) struct Scope {
    pub tenant: Tenant,
    pub registry: Arc<crate::modules::Registry>,
    /// Who called: the control topic names a tenant's own changes.
    pub principal: Principal,
    /// The fleet's control topic, when changes go through it.
    pub fleet: Option<Arc<crate::fleet::Fleet>>,
}

impl Scope {
    /// The tenant a change is written by (`None`: the operator).
    pub fn writer(&self) -> Option<&str> {
        match &self.principal {
            Principal::Operator => None,
            Principal::Tenant(id) => Some(id),
        }
    }
}

impl FromRequestParts<AdminState> for Scope {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AdminState) -> Result<Self, Response> {
        let principal = caller(parts, state).map_err(|r| r.response())?;
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map_err(|e| error(StatusCode::BAD_REQUEST, e.body_text()))?;
        let id = params.get("tenant").cloned().unwrap_or_default();
        if let Principal::Tenant(own) = &principal
            && *own != id
        {
            return Err(Refusal::NoTenant(id).response());
        }
        let registry = state
            .modules
            .as_ref()
            .ok_or_else(|| no_tenant(&id))?
            .clone();
        let tenant = registry
            .tenants()
            .remove(&id)
            .ok_or_else(|| no_tenant(&id))?;
        Ok(Scope {
            tenant,
            registry,
            principal,
            fleet: state.fleet.clone(),
        })
    }
}
