//! Leases of the control loops (issue 14): among the servers and workers sharing one database,
//! the holder of a loop's lease is the one that acts. A holder renews its lease well before it
//! expires; one that stops renewing (it died, or lost the database) loses it at `expires_at`, and
//! whoever asks next takes it with a higher epoch.
//!
//! Taking and renewing are one statement (`INSERT … ON CONFLICT DO UPDATE … WHERE`), atomic on
//! both backends: two contenders never both get a lease.

use sqlx::Row;

use crate::{now_ms, Error, Store};

/// Who holds a lease, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRecord {
    /// The lease's name (`controller`, `autoscaler`).
    pub name: String,
    /// The holder's id.
    pub holder: String,
    /// Grows by one each time the lease changes hands.
    pub epoch: i64,
    /// When the current holder took it (ms since the epoch).
    pub acquired_at: i64,
    /// When it lapses unless renewed (ms since the epoch).
    pub expires_at: i64,
}

/// A lease as its holder got it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Acquired {
    /// Grows by one each time the lease changes hands.
    pub epoch: i64,
    /// The lease changed hands (or was created) with this call; `false` for a renewal (one in
    /// the same millisecond as the take reads as taken again).
    pub taken: bool,
}

/// The leases repository.
pub struct Leases<'a> {
    pub(crate) store: &'a Store,
}

impl Leases<'_> {
    /// Takes or renews `name` for `holder` until `ttl` from now. Returns the epoch when `holder`
    /// holds it afterwards; `None` when another holder's lease has not expired.
    pub async fn acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: std::time::Duration,
    ) -> Result<Option<Acquired>, Error> {
        let now = now_ms();
        let until = now.saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX));
        let row = sqlx::query(
            "INSERT INTO leases (name, holder, epoch, acquired_at, expires_at) \
             VALUES ($1, $2, 1, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET \
               epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END, \
               acquired_at = CASE WHEN leases.holder = excluded.holder THEN leases.acquired_at ELSE excluded.acquired_at END, \
               holder = excluded.holder, \
               expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $3 \
             RETURNING epoch, acquired_at",
        )
        .bind(name)
        .bind(holder)
        .bind(now)
        .bind(until)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        row.map(|r| {
            Ok(Acquired {
                epoch: r.try_get("epoch").map_err(Error::query)?,
                taken: r.try_get::<i64, _>("acquired_at").map_err(Error::query)? == now,
            })
        })
        .transpose()
    }

    /// Gives `name` up at once if `holder` holds it (a clean shutdown: another takes over
    /// without waiting for the expiry). Returns whether it was held.
    pub async fn release(&self, name: &str, holder: &str) -> Result<bool, Error> {
        let done = sqlx::query("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.store.pool)
            .await
            .map_err(Error::query)?;
        Ok(done.rows_affected() > 0)
    }

    /// Who holds `name`, if anyone ever did (check `expires_at` for whether it lapsed).
    pub async fn get(&self, name: &str) -> Result<Option<LeaseRecord>, Error> {
        let row = sqlx::query(
            "SELECT name, holder, epoch, acquired_at, expires_at FROM leases WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(&self.store.pool)
        .await
        .map_err(Error::query)?;
        row.map(|r| {
            Ok(LeaseRecord {
                name: r.try_get("name").map_err(Error::query)?,
                holder: r.try_get("holder").map_err(Error::query)?,
                epoch: r.try_get("epoch").map_err(Error::query)?,
                acquired_at: r.try_get("acquired_at").map_err(Error::query)?,
                expires_at: r.try_get("expires_at").map_err(Error::query)?,
            })
        })
        .transpose()
    }
}
