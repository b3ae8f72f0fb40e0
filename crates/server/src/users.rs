//! Accounts: login, registration with an invite, organisations, users, invites and API tokens.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::Extension;
use racer_core::api::ErrorBody;
use racer_core::auth::{
    check_password, normalize_email, parse_lifetime, ApiToken, CreateInvite, CreateOrg,
    CreateToken, CreateUser, CreatedInvite, CreatedToken, Invite, LoginRequest, LoginResponse, Org,
    RegisterRequest, Role, User, WhoAmI,
};
use racer_core::{AppName, ErrorKind};
use racer_store::{NewEvent, NewInvite, NewToken, NewUser};
use uuid::Uuid;

use crate::auth::{digest_hex, random_secret, Actor, Principal, API_TOKEN_PREFIX, INVITE_PREFIX};
use crate::extract::Json;
use crate::state::AppState;
use crate::ApiError;

/// Invites last this long unless asked otherwise.
const DEFAULT_INVITE_LIFETIME: &str = "7d";

fn invalid(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorKind::Invalid, message).field(field)
}

fn email_field(raw: &str) -> Result<String, ApiError> {
    normalize_email(raw).map_err(|m| invalid("email", m))
}

fn org_name(raw: &str) -> Result<String, ApiError> {
    AppName::parse(raw)
        .map(|n| n.to_string())
        .map_err(|e| invalid("org", format!("invalid organisation name: {e}")))
}

/// The organisation an admin acts in: their own; the install's admin token may name any (and
/// gets `default` when it names none).
fn target_org(p: &Principal, asked: Option<&str>) -> Result<String, ApiError> {
    match (p.org(), asked) {
        (Some(mine), Some(o)) if o != mine => Err(ApiError::new(
            ErrorKind::Forbidden,
            "you can only act in your own organisation",
        )
        .field("org")),
        (Some(mine), _) => Ok(mine.to_owned()),
        (None, Some(o)) => org_name(o),
        (None, None) => Ok(racer_core::auth::DEFAULT_ORG.to_owned()),
    }
}

async fn record(state: &AppState, actor: &str, kind: &str, org: Option<&str>, message: String) {
    let e = NewEvent {
        actor: actor.to_owned(),
        kind: kind.to_owned(),
        app_id: None,
        app_name: None,
        message,
        org: org.map(str::to_owned),
    };
    if let Err(err) = state.0.store.events().append(&e).await {
        tracing::error!(error = %err, "cannot record event");
    }
}

/// Logs in with an email and password; returns a short-lived session token. Rate-limited per
/// account and per source address; the answer never says whether the email exists.
#[utoipa::path(post, path = "/auth/login", security(), request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(req): Json<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let (token, expires_at, user) =
        password_login(&state, &req.email, req.password, addr.ip()).await?;
    Ok(Json(LoginResponse {
        token,
        expires_at,
        user,
    }))
}

/// Checks an email and password (rate-limited per address and email, recorded as events) and
/// issues a session token: the API's login and the dashboard's.
pub(crate) async fn password_login(
    state: &AppState,
    email: &str,
    password: String,
    source: std::net::IpAddr,
) -> Result<(String, chrono::DateTime<chrono::Utc>, User), ApiError> {
    let auth = &state.0.auth;
    // A malformed email is simply a failed login: the same answer as a wrong password.
    let email = normalize_email(email).unwrap_or_else(|_| email.trim().to_lowercase());
    if let Err(wait) = auth.login_allowed(&email, source) {
        return Err(ApiError::with_status(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many login attempts; try again in {wait} s"),
        )
        .retry_after(wait));
    }
    let found = state.0.store.users().by_email(&email).await?;
    let (user, phc) = match found {
        Some((u, hash)) if !u.disabled => (Some(u), hash),
        _ => (None, None),
    };
    let ok = auth.verify(password, phc).await? && user.is_some();
    match user {
        Some(user) if ok => {
            auth.login_succeeded(&email);
            let (token, expires_at) = auth.issue(&user)?;
            record(
                state,
                &user.email,
                "auth.login",
                Some(&user.org),
                format!("{} logged in from {source}", user.email),
            )
            .await;
            Ok((token, expires_at, user))
        }
        other => {
            auth.login_failed(&email);
            let org = other.as_ref().map(|u| u.org.clone());
            record(
                state,
                "anonymous",
                "auth.login.failed",
                org.as_deref(),
                format!("failed login for {email:?} from {source}"),
            )
            .await;
            Err(ApiError::new(
                ErrorKind::Unauthenticated,
                "invalid email or password",
            ))
        }
    }
}

/// Sets a password with a one-time invite code, creating the account.
#[utoipa::path(post, path = "/auth/register", operation_id = "register_user", security(), request_body = RegisterRequest,
    responses((status = 201, body = User), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn register(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(req): Json<RegisterRequest>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let auth = &state.0.auth;
    let email = email_field(&req.email)?;
    if let Err(wait) = auth.address_allowed(addr.ip()) {
        return Err(ApiError::with_status(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many attempts; try again in {wait} s"),
        )
        .retry_after(wait));
    }
    check_password(&req.password).map_err(|m| invalid("password", m))?;
    let hash = auth.hash(req.password).await?;
    let user = state
        .0
        .store
        .invites()
        .redeem(&digest_hex(req.invite.trim()), &email, &hash)
        .await?;
    auth.forget_user(user.id);
    Ok((StatusCode::CREATED, Json(user)))
}

/// Who the caller is.
#[utoipa::path(get, path = "/api/v1/whoami", responses((status = 200, body = WhoAmI)))]
pub(crate) async fn whoami(Extension(p): Extension<Principal>) -> Json<WhoAmI> {
    Json(WhoAmI {
        via: p.via_str().to_owned(),
        org: p.org().map(str::to_owned),
        role: p.role,
        superuser: p.is_superuser(),
        user: p.user,
    })
}

/// Lists organisations (install admin token).
#[utoipa::path(get, path = "/api/v1/orgs", responses((status = 200, body = [Org])))]
pub(crate) async fn list_orgs(State(state): State<AppState>) -> Result<Json<Vec<Org>>, ApiError> {
    Ok(Json(state.0.store.orgs().list().await?))
}

/// Creates an organisation (install admin token).
#[utoipa::path(post, path = "/api/v1/orgs", request_body = CreateOrg,
    responses((status = 201, body = Org), (status = 409, body = ErrorBody)))]
pub(crate) async fn create_org(
    State(state): State<AppState>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<CreateOrg>,
) -> Result<(StatusCode, Json<Org>), ApiError> {
    let name = AppName::parse(&req.name)
        .map_err(|e| invalid("name", format!("invalid organisation name: {e}")))?;
    let org = state.0.store.orgs().create(name.as_str(), &actor.0).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

/// Lists the users of the caller's organisation (all users for the install admin token).
#[utoipa::path(get, path = "/api/v1/users", responses((status = 200, body = [User])))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<User>>, ApiError> {
    Ok(Json(state.0.store.users().list(p.org()).await?))
}

/// Creates a user (an org admin in their organisation; the install admin token anywhere,
/// creating the organisation if it does not exist).
#[utoipa::path(post, path = "/api/v1/users", request_body = CreateUser,
    responses((status = 201, body = User), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<CreateUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let email = email_field(&req.email)?;
    let org = target_org(&p, req.org.as_deref())?;
    if let Some(pw) = &req.password {
        check_password(pw).map_err(|m| invalid("password", m))?;
    }
    let store = &state.0.store;
    if store.users().by_email(&email).await?.is_some() {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("a user with email {email} already exists"),
        )
        .field("email"));
    }
    let password_hash = match req.password {
        Some(pw) => Some(state.0.auth.hash(pw).await?),
        None => None,
    };
    let new = NewUser {
        email,
        org,
        role: req.role,
        password_hash,
    };
    // The install's admin token bootstraps: the organisation is created with its first user.
    let user = if p.is_superuser() {
        store.users().create_with_org(&new, &actor.0).await?
    } else {
        store.users().create(&new, &actor.0).await?
    };
    Ok((StatusCode::CREATED, Json(user)))
}

async fn user_in_scope(state: &AppState, p: &Principal, id: &str) -> Result<User, ApiError> {
    let not_found = || ApiError::new(ErrorKind::NotFound, format!("user {id:?} not found"));
    let id = Uuid::parse_str(id).map_err(|_| not_found())?;
    match state.0.store.users().get(id).await {
        Ok(u) if p.sees(&u.org) => Ok(u),
        Ok(_) | Err(racer_store::Error::NotFound { .. }) => Err(not_found()),
        Err(e) => Err(e.into()),
    }
}

/// Disables a user: they cannot log in, and their sessions and tokens stop working at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/disable",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub(crate) async fn disable_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    set_disabled(state, p, actor, id, true).await
}

/// Enables a disabled user again.
#[utoipa::path(post, path = "/api/v1/users/{id}/enable",
    params(("id" = String, Path, description = "user id")),
    responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub(crate) async fn enable_user(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    set_disabled(state, p, actor, id, false).await
}

async fn set_disabled(
    state: AppState,
    p: Principal,
    actor: Actor,
    id: String,
    disabled: bool,
) -> Result<Json<User>, ApiError> {
    let user = user_in_scope(&state, &p, &id).await?;
    if disabled && p.user.as_ref().is_some_and(|me| me.id == user.id) {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            "you cannot disable yourself; ask another admin",
        ));
    }
    let user = state
        .0
        .store
        .users()
        .set_disabled(user.id, disabled, &actor.0)
        .await?;
    state.0.auth.forget_user(user.id);
    Ok(Json(user))
}

/// Lists invites of the caller's organisation.
#[utoipa::path(get, path = "/api/v1/invites", responses((status = 200, body = [Invite])))]
pub(crate) async fn list_invites(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<Invite>>, ApiError> {
    Ok(Json(state.0.store.invites().list(p.org()).await?))
}

/// Creates a one-time invite code for an email and a role; the code is shown only here.
#[utoipa::path(post, path = "/api/v1/invites", request_body = CreateInvite,
    responses((status = 201, body = CreatedInvite), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_invite(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<CreateInvite>,
) -> Result<(StatusCode, Json<CreatedInvite>), ApiError> {
    let email = email_field(&req.email)?;
    let org = target_org(&p, req.org.as_deref())?;
    if let Some((_, Some(_))) = state.0.store.users().by_email(&email).await? {
        return Err(ApiError::new(
            ErrorKind::Conflict,
            format!("{email} already has an account; they can log in with `racer login`"),
        )
        .field("email"));
    }
    let secs = parse_lifetime(req.expires.as_deref().unwrap_or(DEFAULT_INVITE_LIFETIME))
        .map_err(|m| invalid("expires", m))?;
    let code = random_secret(INVITE_PREFIX);
    let invite = state
        .0
        .store
        .invites()
        .create(
            &NewInvite {
                code_hash: digest_hex(&code),
                email,
                org,
                role: req.role,
                expires_at_ms: chrono::Utc::now().timestamp_millis() + secs * 1000,
            },
            &actor.0,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedInvite { invite, code })))
}

/// Lists API tokens: your own; an org admin sees every token of the organisation, the install
/// admin token all of them.
#[utoipa::path(get, path = "/api/v1/tokens", responses((status = 200, body = [ApiToken])))]
pub(crate) async fn list_tokens(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
) -> Result<Json<Vec<ApiToken>>, ApiError> {
    let tokens = state.0.store.tokens();
    let list = match &p.user {
        None => tokens.list(None, None).await?,
        Some(u) if u.role == Role::Admin => tokens.list(None, Some(&u.org)).await?,
        Some(u) => tokens.list(Some(u.id), None).await?,
    };
    Ok(Json(list))
}

/// Creates an API token for the caller, with the caller's organisation and role; the secret is
/// shown only here.
#[utoipa::path(post, path = "/api/v1/tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 422, body = ErrorBody)))]
pub(crate) async fn create_token(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Json(req): Json<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let Some(user) = &p.user else {
        return Err(ApiError::new(
            ErrorKind::Invalid,
            "the install's admin token belongs to no user; log in as a user to create API tokens",
        ));
    };
    let name = req.name.trim();
    if name.is_empty() || name.len() > 64 || name.chars().any(char::is_control) {
        return Err(invalid(
            "name",
            "token name must be 1-64 printable characters",
        ));
    }
    let expires_at_ms = match req.expires.as_deref() {
        Some(e) => Some(
            chrono::Utc::now().timestamp_millis()
                + parse_lifetime(e).map_err(|m| invalid("expires", m))? * 1000,
        ),
        None => None,
    };
    let secret = random_secret(API_TOKEN_PREFIX);
    let token = state
        .0
        .store
        .tokens()
        .create(
            &NewToken {
                user_id: user.id,
                name: name.to_owned(),
                token_hash: digest_hex(&secret),
                expires_at_ms,
            },
            &actor.0,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(CreatedToken { token, secret })))
}

/// Revokes an API token: your own, or (org admin) any of the organisation's. Takes effect on
/// the next request.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}",
    params(("id" = String, Path, description = "token id")),
    responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
pub(crate) async fn revoke_token(
    State(state): State<AppState>,
    Extension(p): Extension<Principal>,
    Extension(actor): Extension<Actor>,
    Path(id): Path<String>,
) -> Result<Json<ApiToken>, ApiError> {
    let not_found = || ApiError::new(ErrorKind::NotFound, format!("token {id:?} not found"));
    let tid = Uuid::parse_str(&id).map_err(|_| not_found())?;
    let store = &state.0.store;
    let token = match store.tokens().get(tid).await {
        Ok(t) => t,
        Err(racer_store::Error::NotFound { .. }) => return Err(not_found()),
        Err(e) => return Err(e.into()),
    };
    let owner = store.users().get(token.user_id).await?;
    let allowed = match &p.user {
        None => true,
        Some(u) => u.id == owner.id || (u.role == Role::Admin && u.org == owner.org),
    };
    if !allowed {
        return Err(not_found());
    }
    let token = store.tokens().revoke(tid, &actor.0).await?;
    state.0.auth.forget_token(tid);
    Ok(Json(token))
}
