//! Certificates by ACME (issue 19): every app host (`<app>.<domain>`) gets a certificate from the
//! ACME directory the operator names (`--acme-directory`, e.g. Let's Encrypt), by HTTP-01 answered
//! on the proxy's plain-HTTP port, kept in the data directory (`tls/acme/<host>.crt|.key`, 0600)
//! and renewed before expiry (see [`racer_core::tls::Validity::renew_at`]).
//!
//! One loop ([`run`]) in each server process (the process whose proxy answers the challenge):
//! every pass loads what is on disk into the proxy, then orders, one host at a time, what is
//! missing or due. A failed order is an event (`tls.failed`) and is tried again after a backoff
//! (doubling from 10 s to an hour); an issued one is `tls.issued`. The account's key is kept in
//! `tls/acme/account.json` (0600) and made again if the directory no longer knows it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use racer_store::NewEvent;
use tokio_util::sync::CancellationToken;

use crate::Ctx;

/// How racer orders certificates.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    /// The ACME directory URL.
    pub directory: String,
    /// A contact address for the account (`mailto:` added if missing); none if empty.
    pub email: Option<String>,
    /// A PEM file of the CA that signs the directory's own HTTPS certificate, for a private ACME
    /// server (Pebble, step-ca); default: the system's roots.
    pub ca_root: Option<PathBuf>,
    /// Renew when this much of a certificate's life is left (but not before two thirds of it).
    pub renew_before: Duration,
    /// How often the loop looks at every host.
    pub every: Duration,
}

/// Where the certificates and the account live.
pub fn dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls").join("acme")
}

/// The certificate and key files of `host`.
pub fn files(data_dir: &Path, host: &str) -> (PathBuf, PathBuf) {
    let d = dir(data_dir);
    (d.join(format!("{host}.crt")), d.join(format!("{host}.key")))
}

/// One host as the loop knows it.
#[derive(Default)]
struct Host {
    /// The expiry of what the proxy serves (and when it was loaded from disk).
    served: Option<(racer_core::tls::Validity, std::time::SystemTime)>,
    /// Failed orders in a row, and when to try again.
    failures: u32,
    retry_at: Option<Instant>,
}

/// Orders and renews the app hosts' certificates until `shutdown` (see the module).
pub async fn run(ctx: Ctx, acme: AcmeSettings, shutdown: CancellationToken) {
    let domain = match &ctx.settings.app_urls {
        Some(u) => u.domain.clone(),
        None => return,
    };
    let tls = ctx.routes.tls().clone();
    let d = dir(&ctx.data_dir);
    if let Err(e) = make_private_dir(&d) {
        tracing::error!(error = %e, dir = %d.display(), "ACME: cannot make the certificate directory");
        return;
    }
    tracing::info!(directory = %acme.directory, "ACME: certificates for <app>.{domain}");
    let mut hosts: HashMap<String, Host> = HashMap::new();
    let mut account: Option<Account> = None;
    loop {
        let apps = match ctx.store.apps().all().await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "ACME: cannot list apps");
                Vec::new()
            }
        };
        let wanted: Vec<(String, &racer_core::api::App)> = apps
            .iter()
            .map(|a| (format!("{}.{domain}", a.name), a))
            .collect();
        // Deleted apps: their certificates are no longer served (the files stay).
        hosts.retain(|h, _| {
            let keep = wanted.iter().any(|(w, _)| w == h);
            if !keep {
                tls.remove_host(h);
            }
            keep
        });
        for (host, app) in &wanted {
            if shutdown.is_cancelled() {
                return;
            }
            let state = hosts.entry(host.clone()).or_default();
            load_from_disk(&ctx.data_dir, host, state, &tls);
            let now = chrono::Utc::now().timestamp();
            let max_left = i64::try_from(acme.renew_before.as_secs()).unwrap_or(i64::MAX);
            let due = state.served.is_none_or(|(v, _)| v.due(now, max_left));
            let waiting = state.retry_at.is_some_and(|t| Instant::now() < t);
            if !due || waiting {
                continue;
            }
            let renewal = state.served.is_some();
            let result = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = order(&ctx, &acme, &mut account, host) => r,
            };
            match result {
                Ok(validity) => {
                    state.failures = 0;
                    state.retry_at = None;
                    load_from_disk(&ctx.data_dir, host, state, &tls);
                    let e = NewEvent::app(
                        "racer",
                        "tls.issued",
                        app,
                        format!(
                            "{} certificate for {host} issued, valid until {}",
                            if renewal { "renewed" } else { "a" },
                            chrono::DateTime::from_timestamp(validity.not_after, 0)
                                .map(|t| t.to_rfc3339())
                                .unwrap_or_default()
                        ),
                    );
                    let _ = ctx.store.events().append(&e).await;
                }
                Err(why) => {
                    state.failures += 1;
                    let wait = Duration::from_secs(10)
                        .saturating_mul(1 << state.failures.min(9).saturating_sub(1))
                        .min(Duration::from_secs(3600));
                    state.retry_at = Some(Instant::now() + wait);
                    tracing::warn!(%host, error = %why, retry_in = ?wait, "ACME: no certificate");
                    let e = NewEvent::app(
                        "racer",
                        "tls.failed",
                        app,
                        format!(
                            "no certificate for {host}: {why} (tried {} time(s); next in {}s)",
                            state.failures,
                            wait.as_secs()
                        ),
                    );
                    let _ = ctx.store.events().append(&e).await;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(acme.every) => {}
        }
    }
}

/// Serves `host`'s certificate from disk if the files changed since they were loaded.
fn load_from_disk(data_dir: &Path, host: &str, state: &mut Host, tls: &racer_proxy::Tls) {
    let (crt, key) = files(data_dir, host);
    let Ok(modified) = std::fs::metadata(&crt).and_then(|m| m.modified()) else {
        return;
    };
    if state.served.is_some_and(|(_, m)| m == modified) {
        return;
    }
    let Ok(pem) = std::fs::read(&crt) else { return };
    match racer_proxy::load_files(&crt, &key) {
        Ok(ck) => {
            let Some(validity) = ck
                .end_entity_cert()
                .ok()
                .and_then(|c| racer_core::tls::validity(c))
            else {
                tracing::warn!(%host, "ACME: the stored certificate has no readable validity");
                return;
            };
            tls.set_host(host, ck);
            state.served = Some((validity, modified));
        }
        Err(e) => tracing::warn!(%host, error = %e, "ACME: the stored certificate does not load"),
    }
    drop(pem);
}

/// One order for `host`: account (made or loaded), HTTP-01 answered by the proxy, finalize,
/// certificate and key written. Returns the new certificate's validity.
async fn order(
    ctx: &Ctx,
    acme: &AcmeSettings,
    account: &mut Option<Account>,
    host: &str,
) -> Result<racer_core::tls::Validity, String> {
    if account.is_none() {
        *account = Some(load_or_create_account(&ctx.data_dir, acme).await?);
    }
    let Some(acct) = account.as_ref() else {
        return Err("no ACME account".into());
    };
    let result = order_with(ctx, acct, host).await;
    if let Err(e) = &result {
        // The directory forgot the account (a test server restarted, an account deactivated):
        // make a new one next time.
        if e.contains("accountDoesNotExist") || e.contains("unauthorized") {
            *account = None;
            let _ = std::fs::remove_file(dir(&ctx.data_dir).join("account.json"));
        }
    }
    result
}

async fn order_with(
    ctx: &Ctx,
    account: &Account,
    host: &str,
) -> Result<racer_core::tls::Validity, String> {
    let tls = ctx.routes.tls();
    let ids = [Identifier::Dns(host.to_string())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| format!("new order: {e}"))?;
    let mut tokens = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(a) = authorizations.next().await {
        let mut authz = a.map_err(|e| format!("authorization: {e}"))?;
        match authz.status {
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            other => return Err(format!("authorization is {other:?}")),
        }
        let mut challenge = authz
            .challenge(ChallengeType::Http01)
            .ok_or("the directory offers no http-01 challenge")?;
        let key_authorization = challenge.key_authorization();
        tls.set_challenge(&challenge.token, key_authorization.as_str());
        tokens.push(challenge.token.clone());
        challenge
            .set_ready()
            .await
            .map_err(|e| format!("challenge: {e}"))?;
    }
    let retries = RetryPolicy::default().timeout(Duration::from_secs(90));
    let status = order.poll_ready(&retries).await;
    for t in &tokens {
        tls.clear_challenge(t);
    }
    let status = status.map_err(|e| format!("waiting for validation: {e}"))?;
    if status != OrderStatus::Ready {
        return Err(format!(
            "the order is {status:?} (the directory could not fetch http://{host}/.well-known/acme-challenge/ from this proxy's HTTP port)"
        ));
    }
    let key_pem = order
        .finalize()
        .await
        .map_err(|e| format!("finalize: {e}"))?;
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .map_err(|e| format!("certificate: {e}"))?;
    // Checked before it is written: a pair that does not load is not stored.
    let ck = racer_proxy::certified_key(chain_pem.as_bytes(), key_pem.as_bytes(), host)
        .map_err(|e| e.to_string())?;
    let validity = ck
        .end_entity_cert()
        .ok()
        .and_then(|c| racer_core::tls::validity(c))
        .ok_or("the issued certificate has no readable validity")?;
    let (crt, key) = files(&ctx.data_dir, host);
    // The key first: the certificate's change is what the loop notices.
    write_private(&key, key_pem.as_bytes()).map_err(|e| format!("writing the key: {e}"))?;
    write_private(&crt, chain_pem.as_bytes())
        .map_err(|e| format!("writing the certificate: {e}"))?;
    Ok(validity)
}

async fn load_or_create_account(data_dir: &Path, acme: &AcmeSettings) -> Result<Account, String> {
    let builder = || match &acme.ca_root {
        Some(root) => Account::builder_with_root(root)
            .map_err(|e| format!("--acme-ca-root {}: {e}", root.display())),
        None => Account::builder().map_err(|e| format!("ACME client: {e}")),
    };
    let path = dir(data_dir).join("account.json");
    if let Ok(text) = std::fs::read(&path) {
        if let Ok(saved) = serde_json::from_slice::<SavedAccount>(&text) {
            if saved.directory == acme.directory {
                match builder()?.from_credentials(saved.credentials).await {
                    Ok(a) => return Ok(a),
                    Err(e) => {
                        tracing::warn!(error = %e, "ACME: the saved account does not load; making a new one")
                    }
                }
            }
        }
    }
    let contact = acme.email.as_ref().filter(|e| !e.is_empty()).map(|e| {
        if e.starts_with("mailto:") {
            e.clone()
        } else {
            format!("mailto:{e}")
        }
    });
    let contacts: Vec<&str> = contact.iter().map(String::as_str).collect();
    let (account, credentials) = builder()?
        .create(
            &NewAccount {
                contact: &contacts,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            acme.directory.clone(),
            None,
        )
        .await
        .map_err(|e| format!("creating the ACME account at {}: {e}", acme.directory))?;
    let saved = SavedAccount {
        directory: acme.directory.clone(),
        credentials,
    };
    match serde_json::to_vec(&saved) {
        Ok(bytes) => {
            if let Err(e) = write_private(&path, &bytes) {
                tracing::warn!(error = %e, "ACME: cannot keep the account (a new one next start)");
            }
        }
        Err(e) => tracing::warn!(error = %e, "ACME: cannot keep the account"),
    }
    Ok(account)
}

/// The account as kept on disk: its key (credentials) and the directory it belongs to.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedAccount {
    directory: String,
    credentials: AccountCredentials,
}

fn make_private_dir(d: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(d)
}

/// Writes `bytes` to `path` (0600) through a file beside it and a rename: a reader sees the old
/// file or the new one, never half of one.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
