//! The control loops' leases, on SQLite and PostgreSQL: one holder at a time, even when many
//! contend at once; renewal keeps the epoch; an expired lease goes to the next asker with a
//! higher epoch; a released one is free at once.

use std::time::Duration;

use crate::contract;

/// The epoch `holder` holds `name` at after asking, if it does.
async fn epoch(
    leases: &racer_store::Leases<'_>,
    name: &str,
    holder: &str,
    ttl: Duration,
) -> Option<i64> {
    leases
        .acquire(name, holder, ttl)
        .await
        .unwrap()
        .map(|a| a.epoch)
}

contract!(one_holder_at_a_time_renewal_expiry_and_release, |db| {
    let leases = db.store.leases();
    let ttl = Duration::from_millis(400);
    let first = leases
        .acquire("controller", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(first.taken, "a new lease is taken");
    // (A renewal within the millisecond of the take would count as taken too.)
    tokio::time::sleep(Duration::from_millis(5)).await;
    let renewed = leases
        .acquire("controller", "a", ttl)
        .await
        .unwrap()
        .unwrap();
    assert!(!renewed.taken, "a renewal is not a change of hands");
    assert_eq!(renewed.epoch, 1);
    assert_eq!(epoch(&leases, "controller", "a", ttl).await, Some(1));
    // Renewing keeps the epoch; another is refused while it runs.
    assert_eq!(epoch(&leases, "controller", "a", ttl).await, Some(1));
    assert_eq!(epoch(&leases, "controller", "b", ttl).await, None);
    // Another lease name is independent.
    assert_eq!(epoch(&leases, "autoscaler", "b", ttl).await, Some(1));
    let held = leases.get("controller").await.unwrap().unwrap();
    assert_eq!((held.holder.as_str(), held.epoch), ("a", 1));
    // Not renewed: it lapses and the next asker takes it with a new epoch; the old holder is
    // refused from then on.
    tokio::time::sleep(Duration::from_millis(450)).await;
    let taken = leases
        .acquire("controller", "b", ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((taken.epoch, taken.taken), (2, true), "b took it over");
    assert_eq!(epoch(&leases, "controller", "a", ttl).await, None);
    // Released: free at once.
    assert!(leases.release("controller", "b").await.unwrap());
    assert!(
        !leases.release("controller", "a").await.unwrap(),
        "a holds nothing"
    );
    assert_eq!(epoch(&leases, "controller", "a", ttl).await, Some(3));
    assert_eq!(leases.get("nothing").await.unwrap(), None);
});

contract!(contenders_at_once_get_exactly_one_holder, |db| {
    for round in 0..5 {
        let name = format!("race-{round}");
        let mut tasks = Vec::new();
        for c in 0..8 {
            let store = db.store.clone();
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .leases()
                    .acquire(&name, &format!("c{c}"), Duration::from_secs(30))
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            if t.await.unwrap().is_some() {
                winners += 1;
            }
        }
        assert_eq!(
            winners, 1,
            "round {round}: exactly one contender holds the lease"
        );
    }
});
