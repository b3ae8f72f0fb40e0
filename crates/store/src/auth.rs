//! Organisations, users, invites and API tokens. Secrets never reach this module: passwords
//! arrive as argon2id PHC strings, invite codes and API tokens as hex SHA-256 digests.

use racer_core::auth::{ApiToken, Invite, Org, Role, User};
use sqlx::any::AnyRow;
use sqlx::Row;
use uuid::Uuid;

use crate::events::{insert_event, NewEvent};
use crate::{from_ms, now_ms, Error, Store};

fn uuid_of(row: &AnyRow, col: &str, what: &'static str) -> Result<Uuid, Error> {
    let s: String = row.try_get(col).map_err(Error::query)?;
    Uuid::parse_str(&s).map_err(|_| Error::Corrupt { what })
}

fn role_of(row: &AnyRow) -> Result<Role, Error> {
    let s: String = row.try_get("role").map_err(Error::query)?;
    s.parse().map_err(|_| Error::Corrupt { what: "role" })
}

fn event(actor: &str, kind: &str, org: &str, message: String) -> NewEvent {
    NewEvent {
        actor: actor.to_owned(),
        kind: kind.to_owned(),
        app_id: None,
        app_name: None,
        message,
        org: Some(org.to_owned()),
    }
}

/// Organisations.
pub struct Orgs<'a> {
    pub(crate) store: &'a Store,
}

fn org_from_row(row: &AnyRow) -> Result<Org, Error> {
    Ok(Org {
        id: uuid_of(row, "id", "org id")?,
        name: row.try_get("name").map_err(Error::query)?,
        created_at: from_ms(row.try_get("created_at").map_err(Error::query)?),
    })
}

impl Orgs<'_> {
    /// Creates an organisation; a taken name is a conflict on `name`.
    pub async fn create(&self, name: &str, actor: &str) -> Result<Org, Error> {
        let now = now_ms();
        let org = Org {
            id: Uuid::new_v4(),
            name: name.to_owned(),
            created_at: from_ms(now),
        };
        let mut tx = self.store.write_tx().await?;
        sqlx::query("INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(org.id.to_string())
            .bind(name)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|e| Error::unique_or_query(e, "org", "name", name))?;
        insert_event(
            &mut tx,
            &event(actor, "org.created", name, format!("org {name} created")),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        Ok(org)
    }

    /// Finds an organisation by name.
    pub async fn get(&self, name: &str) -> Result<Org, Error> {
        let row = sqlx::query("SELECT id, name, created_at FROM orgs WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.store.pool)
            .await
            .map_err(Error::query)?;
        match row {
            Some(r) => org_from_row(&r),
            None => Err(Error::NotFound {
                what: "org",
                key: name.to_owned(),
            }),
        }
    }

    /// Every organisation, by name.
    pub async fn list(&self) -> Result<Vec<Org>, Error> {
        let rows = sqlx::query("SELECT id, name, created_at FROM orgs ORDER BY name")
            .fetch_all(&self.store.pool)
            .await
            .map_err(Error::query)?;
        rows.iter().map(org_from_row).collect()
    }
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Normalised email.
    pub email: String,
    /// Organisation name (must exist).
    pub org: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string, if a password is set now.
    pub password_hash: Option<String>,
}

/// Users.
pub struct Users<'a> {
    pub(crate) store: &'a Store,
}

const USER_COLUMNS: &str = "id, email, org, role, disabled, created_at, password_hash";

fn user_from_row(row: &AnyRow) -> Result<User, Error> {
    Ok(User {
        id: uuid_of(row, "id", "user id")?,
        email: row.try_get("email").map_err(Error::query)?,
        org: row.try_get("org").map_err(Error::query)?,
        role: role_of(row)?,
        disabled: row.try_get::<i32, _>("disabled").map_err(Error::query)? != 0,
        created_at: from_ms(row.try_get("created_at").map_err(Error::query)?),
    })
}

async fn insert_user(conn: &mut sqlx::AnyConnection, u: &NewUser, now: i64) -> Result<User, Error> {
    let user = User {
        id: Uuid::new_v4(),
        email: u.email.clone(),
        org: u.org.clone(),
        role: u.role,
        disabled: false,
        created_at: from_ms(now),
    };
    sqlx::query(
        "INSERT INTO users (id, email, org, role, password_hash, disabled, created_at) \
         VALUES ($1, $2, $3, $4, $5, 0, $6)",
    )
    .bind(user.id.to_string())
    .bind(&user.email)
    .bind(&user.org)
    .bind(user.role.as_str())
    .bind(u.password_hash.as_deref())
    .bind(now)
    .execute(conn)
    .await
    .map_err(|e| Error::unique_or_query(e, "user", "email", &u.email))?;
    Ok(user)
}

impl Users<'_> {
    /// Creates a user in an existing organisation.
    pub async fn create(&self, u: &NewUser, actor: &str) -> Result<User, Error> {
        self.store.orgs().get(&u.org).await?;
        self.insert(u, false, actor).await
    }

    /// Creates a user, and their organisation if it does not exist, in one transaction: a
    /// refused user (a taken email) leaves no new organisation behind.
    pub async fn create_with_org(&self, u: &NewUser, actor: &str) -> Result<User, Error> {
        self.insert(u, true, actor).await
    }

    async fn insert(&self, u: &NewUser, with_org: bool, actor: &str) -> Result<User, Error> {
        let now = now_ms();
        let mut tx = self.store.write_tx().await?;
        if with_org {
            let made = sqlx::query(
                "INSERT INTO orgs (id, name, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(Uuid::new_v4().to_string())
            .bind(&u.org)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
            if made.rows_affected() == 1 {
                insert_event(
                    &mut tx,
                    &event(
                        actor,
                        "org.created",
                        &u.org,
                        format!("org {} created", u.org),
                    ),
                )
                .await?;
            }
        }
        let user = insert_user(&mut tx, u, now).await?;
        insert_event(
            &mut tx,
            &event(
                actor,
                "user.created",
                &user.org,
                format!("user {} created with role {}", user.email, user.role),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        Ok(user)
    }

    /// Finds a user by id.
    pub async fn get(&self, id: Uuid) -> Result<User, Error> {
        let row = sqlx::query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.store.pool)
            .await
            .map_err(Error::query)?;
        match row {
            Some(r) => user_from_row(&r),
            None => Err(Error::NotFound {
                what: "user",
                key: id.to_string(),
            }),
        }
    }

    /// Finds a user by (normalised) email, with their password hash if one is set.
    pub async fn by_email(&self, email: &str) -> Result<Option<(User, Option<String>)>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        row.map(|r| {
            let hash: Option<String> = r.try_get("password_hash").map_err(Error::query)?;
            Ok((user_from_row(&r)?, hash))
        })
        .transpose()
    }

    /// Users of one organisation, or (`None`) of all, by email.
    pub async fn list(&self, org: Option<&str>) -> Result<Vec<User>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE ($1 IS NULL OR org = $1) ORDER BY org, email"
        ))
        .bind(org)
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(user_from_row).collect()
    }

    /// Disables (or enables) a user.
    pub async fn set_disabled(&self, id: Uuid, disabled: bool, actor: &str) -> Result<User, Error> {
        let user = self.get(id).await?;
        let mut tx = self.store.write_tx().await?;
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i32::from(disabled))
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        let verb = if disabled { "disabled" } else { "enabled" };
        insert_event(
            &mut tx,
            &event(
                actor,
                &format!("user.{verb}"),
                &user.org,
                format!("user {} {verb}", user.email),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.get(id).await
    }
}

/// An invite to create.
#[derive(Debug, Clone)]
pub struct NewInvite {
    /// Hex SHA-256 of the code.
    pub code_hash: String,
    /// Normalised email.
    pub email: String,
    /// Organisation.
    pub org: String,
    /// Role.
    pub role: Role,
    /// Expiry, ms since epoch.
    pub expires_at_ms: i64,
}

/// Invites.
pub struct Invites<'a> {
    pub(crate) store: &'a Store,
}

const INVITE_COLUMNS: &str = "id, email, org, role, expires_at, used_at, created_by, created_at";

fn invite_from_row(row: &AnyRow) -> Result<Invite, Error> {
    let used: Option<i64> = row.try_get("used_at").map_err(Error::query)?;
    Ok(Invite {
        id: uuid_of(row, "id", "invite id")?,
        email: row.try_get("email").map_err(Error::query)?,
        org: row.try_get("org").map_err(Error::query)?,
        role: role_of(row)?,
        expires_at: from_ms(row.try_get("expires_at").map_err(Error::query)?),
        used_at: used.map(from_ms),
        created_by: row.try_get("created_by").map_err(Error::query)?,
        created_at: from_ms(row.try_get("created_at").map_err(Error::query)?),
    })
}

impl Invites<'_> {
    /// Records an invite.
    pub async fn create(&self, i: &NewInvite, actor: &str) -> Result<Invite, Error> {
        self.store.orgs().get(&i.org).await?;
        let now = now_ms();
        let invite = Invite {
            id: Uuid::new_v4(),
            email: i.email.clone(),
            org: i.org.clone(),
            role: i.role,
            expires_at: from_ms(i.expires_at_ms),
            used_at: None,
            created_by: actor.to_owned(),
            created_at: from_ms(now),
        };
        let mut tx = self.store.write_tx().await?;
        sqlx::query(
            "INSERT INTO invites (id, code_hash, email, org, role, expires_at, used_at, created_by, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, NULL, $7, $8)",
        )
        .bind(invite.id.to_string())
        .bind(&i.code_hash)
        .bind(&i.email)
        .bind(&i.org)
        .bind(i.role.as_str())
        .bind(i.expires_at_ms)
        .bind(actor)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        insert_event(
            &mut tx,
            &event(
                actor,
                "invite.created",
                &i.org,
                format!("invite for {} as {} created", i.email, i.role),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        Ok(invite)
    }

    /// Invites of one organisation, or (`None`) of all, newest first.
    pub async fn list(&self, org: Option<&str>) -> Result<Vec<Invite>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {INVITE_COLUMNS} FROM invites WHERE ($1 IS NULL OR org = $1) \
             ORDER BY created_at DESC"
        ))
        .bind(org)
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(invite_from_row).collect()
    }

    /// Uses an invite: in one transaction, marks it used (only if unused, unexpired and for
    /// `email`) and creates the user with `password_hash`, or sets the password of a user
    /// created without one. Every refusal is the same [`Error::InviteUnusable`], so the answer
    /// says nothing about which codes or emails exist.
    pub async fn redeem(
        &self,
        code_hash: &str,
        email: &str,
        password_hash: &str,
    ) -> Result<User, Error> {
        let now = now_ms();
        let mut tx = self.store.write_tx().await?;
        let row = sqlx::query(&format!(
            "SELECT {INVITE_COLUMNS} FROM invites WHERE code_hash = $1"
        ))
        .bind(code_hash)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::query)?;
        let invite = match row {
            Some(r) => invite_from_row(&r)?,
            None => return Err(Error::InviteUnusable),
        };
        if invite.email != email || invite.used_at.is_some() || invite.expires_at <= from_ms(now) {
            return Err(Error::InviteUnusable);
        }
        let used = sqlx::query("UPDATE invites SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(invite.id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        if used.rows_affected() != 1 {
            return Err(Error::InviteUnusable);
        }
        let existing = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email)
        .fetch_optional(&mut *tx)
        .await
        .map_err(Error::query)?;
        let user = match existing {
            Some(r) => {
                let hash: Option<String> = r.try_get("password_hash").map_err(Error::query)?;
                let user = user_from_row(&r)?;
                if hash.is_some() || user.org != invite.org {
                    // Already registered (or someone else's account): the invite cannot apply.
                    return Err(Error::InviteUnusable);
                }
                sqlx::query("UPDATE users SET password_hash = $1, role = $2 WHERE id = $3")
                    .bind(password_hash)
                    .bind(invite.role.as_str())
                    .bind(user.id.to_string())
                    .execute(&mut *tx)
                    .await
                    .map_err(Error::query)?;
                User {
                    role: invite.role,
                    ..user
                }
            }
            None => {
                insert_user(
                    &mut tx,
                    &NewUser {
                        email: email.to_owned(),
                        org: invite.org.clone(),
                        role: invite.role,
                        password_hash: Some(password_hash.to_owned()),
                    },
                    now,
                )
                .await?
            }
        };
        insert_event(
            &mut tx,
            &event(
                &format!("user:{email}"),
                "user.registered",
                &invite.org,
                format!("{email} registered with an invite as {}", invite.role),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        Ok(user)
    }
}

/// An API token to create.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// The owner.
    pub user_id: Uuid,
    /// Label.
    pub name: String,
    /// Hex SHA-256 of the secret.
    pub token_hash: String,
    /// Expiry, ms since epoch.
    pub expires_at_ms: Option<i64>,
}

/// API tokens.
pub struct Tokens<'a> {
    pub(crate) store: &'a Store,
}

const TOKEN_COLUMNS: &str = "t.id AS id, t.name AS name, t.user_id AS user_id, u.email AS email, \
     t.expires_at AS expires_at, t.revoked_at AS revoked_at, t.created_at AS created_at";

fn token_from_row(row: &AnyRow) -> Result<ApiToken, Error> {
    let expires: Option<i64> = row.try_get("expires_at").map_err(Error::query)?;
    let revoked: Option<i64> = row.try_get("revoked_at").map_err(Error::query)?;
    Ok(ApiToken {
        id: uuid_of(row, "id", "token id")?,
        name: row.try_get("name").map_err(Error::query)?,
        user_id: uuid_of(row, "user_id", "token user id")?,
        email: row.try_get("email").map_err(Error::query)?,
        expires_at: expires.map(from_ms),
        revoked_at: revoked.map(from_ms),
        created_at: from_ms(row.try_get("created_at").map_err(Error::query)?),
    })
}

impl Tokens<'_> {
    /// Records a token for a user.
    pub async fn create(&self, t: &NewToken, actor: &str) -> Result<ApiToken, Error> {
        let user = self.store.users().get(t.user_id).await?;
        let now = now_ms();
        let id = Uuid::new_v4();
        let mut tx = self.store.write_tx().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, token_hash, expires_at, revoked_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, NULL, $6)",
        )
        .bind(id.to_string())
        .bind(t.user_id.to_string())
        .bind(&t.name)
        .bind(&t.token_hash)
        .bind(t.expires_at_ms)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(Error::query)?;
        insert_event(
            &mut tx,
            &event(
                actor,
                "token.created",
                &user.org,
                format!("API token {:?} ({id}) created for {}", t.name, user.email),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.get(id).await
    }

    /// Finds a token by id.
    pub async fn get(&self, id: Uuid) -> Result<ApiToken, Error> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        match row {
            Some(r) => token_from_row(&r),
            None => Err(Error::NotFound {
                what: "token",
                key: id.to_string(),
            }),
        }
    }

    /// The token with this digest and its owner (revoked and expired ones too: the caller
    /// decides).
    pub async fn by_hash(&self, token_hash: &str) -> Result<Option<(ApiToken, User)>, Error> {
        let row = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE t.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        match row {
            Some(r) => {
                let token = token_from_row(&r)?;
                let user = self.store.users().get(token.user_id).await?;
                Ok(Some((token, user)))
            }
            None => Ok(None),
        }
    }

    /// Tokens of one user, or of every user of one organisation, or (both `None`) all.
    pub async fn list(
        &self,
        user: Option<Uuid>,
        org: Option<&str>,
    ) -> Result<Vec<ApiToken>, Error> {
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens t JOIN users u ON u.id = t.user_id \
             WHERE ($1 IS NULL OR t.user_id = $1) AND ($2 IS NULL OR u.org = $2) \
             ORDER BY t.created_at"
        ))
        .bind(user.map(|u| u.to_string()))
        .bind(org)
        .fetch_all(&self.store.pool)
        .await
        .map_err(Error::query)?;
        rows.iter().map(token_from_row).collect()
    }

    /// Revokes a token (idempotent: revoking twice keeps the first time).
    pub async fn revoke(&self, id: Uuid, actor: &str) -> Result<ApiToken, Error> {
        let token = self.get(id).await?;
        let user = self.store.users().get(token.user_id).await?;
        let mut tx = self.store.write_tx().await?;
        sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2")
            .bind(now_ms())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await
            .map_err(Error::query)?;
        insert_event(
            &mut tx,
            &event(
                actor,
                "token.revoked",
                &user.org,
                format!(
                    "API token {:?} ({id}) of {} revoked",
                    token.name, user.email
                ),
            ),
        )
        .await?;
        tx.commit().await.map_err(Error::query)?;
        self.get(id).await
    }
}
