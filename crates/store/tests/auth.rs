use racer_core::auth::Role;
use racer_core::AppName;
use racer_store::{Error, EventFilter, NewInvite, NewToken, NewUser};

use crate::contract;

fn user(email: &str, org: &str, role: Role) -> NewUser {
    NewUser {
        email: email.to_owned(),
        org: org.to_owned(),
        role,
        password_hash: Some("$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".to_owned()),
    }
}

contract!(orgs_users_and_scoped_apps, |db| {
    let s = &db.store;
    assert_eq!(s.orgs().list().await.unwrap()[0].name, "default");
    s.orgs().create("acme", "admin").await.unwrap();
    assert!(matches!(
        s.orgs().create("acme", "admin").await,
        Err(Error::Conflict {
            what: "org",
            field: "name",
            ..
        })
    ));
    assert!(matches!(
        s.users()
            .create(&user("a@x.io", "nope", Role::Admin), "admin")
            .await,
        Err(Error::NotFound { what: "org", .. })
    ));
    let alice = s
        .users()
        .create(&user("alice@acme.io", "acme", Role::Admin), "admin")
        .await
        .unwrap();
    assert!(matches!(
        s.users()
            .create(&user("alice@acme.io", "default", Role::Viewer), "admin")
            .await,
        Err(Error::Conflict { field: "email", .. })
    ));
    let (found, hash) = s.users().by_email("alice@acme.io").await.unwrap().unwrap();
    assert_eq!(found, alice);
    assert!(hash.unwrap().starts_with("$argon2id$"));
    assert!(s.users().by_email("bob@acme.io").await.unwrap().is_none());
    assert_eq!(
        s.users().list(Some("acme")).await.unwrap(),
        vec![alice.clone()]
    );
    assert!(s.users().list(Some("default")).await.unwrap().is_empty());
    // Bootstrap creates the org with its first user, in one transaction: a refused user (taken
    // email) leaves no organisation behind.
    let carl = s
        .users()
        .create_with_org(&user("carl@new.io", "newco", Role::Admin), "admin")
        .await
        .unwrap();
    assert_eq!(s.orgs().get("newco").await.unwrap().name, carl.org);
    assert!(matches!(
        s.users()
            .create_with_org(&user("alice@acme.io", "ghost", Role::Admin), "admin")
            .await,
        Err(Error::Conflict { field: "email", .. })
    ));
    assert!(matches!(
        s.orgs().get("ghost").await,
        Err(Error::NotFound { what: "org", .. })
    ));
    let off = s
        .users()
        .set_disabled(alice.id, true, "admin")
        .await
        .unwrap();
    assert!(off.disabled);

    // Apps belong to an org; lists and events are scoped by it.
    let web = s
        .apps()
        .create(
            &AppName::parse("web").unwrap(),
            "acme",
            "user:alice@acme.io",
        )
        .await
        .unwrap();
    assert_eq!(web.org, "acme");
    s.apps()
        .create(&AppName::parse("other").unwrap(), "default", "admin")
        .await
        .unwrap();
    let acme_apps = s.apps().list(Some("acme"), 50, None).await.unwrap();
    assert_eq!(acme_apps.items.len(), 1);
    assert_eq!(s.apps().list(None, 50, None).await.unwrap().items.len(), 2);
    let filter = EventFilter {
        org: Some("acme".into()),
        ..Default::default()
    };
    let events = s.events().list(&filter, 100, None).await.unwrap().items;
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "org.created",
            "user.created",
            "user.disabled",
            "app.created"
        ]
    );
    assert!(events.iter().all(|e| e.org.as_deref() == Some("acme")));
});

contract!(invites_are_one_time_expiring_and_email_bound, |db| {
    let s = &db.store;
    s.orgs().create("acme", "admin").await.unwrap();
    let now = chrono::Utc::now().timestamp_millis();
    let invite = |code: &str, expires: i64| NewInvite {
        code_hash: code.to_owned(),
        email: "bob@acme.io".to_owned(),
        org: "acme".to_owned(),
        role: Role::Developer,
        expires_at_ms: expires,
    };
    s.invites()
        .create(&invite("h1", now + 60_000), "admin")
        .await
        .unwrap();
    s.invites()
        .create(&invite("h2", now - 1), "admin")
        .await
        .unwrap();
    assert!(matches!(
        s.invites().redeem("h1", "eve@acme.io", "$argon2id$x").await,
        Err(Error::InviteUnusable)
    ));
    assert!(matches!(
        s.invites().redeem("h2", "bob@acme.io", "$argon2id$x").await,
        Err(Error::InviteUnusable)
    ));
    assert!(matches!(
        s.invites()
            .redeem("nope", "bob@acme.io", "$argon2id$x")
            .await,
        Err(Error::InviteUnusable)
    ));
    // A refused redemption changed nothing.
    assert!(s.users().by_email("bob@acme.io").await.unwrap().is_none());
    let bob = s
        .invites()
        .redeem("h1", "bob@acme.io", "$argon2id$x")
        .await
        .unwrap();
    assert_eq!((bob.org.as_str(), bob.role), ("acme", Role::Developer));
    assert!(matches!(
        s.invites().redeem("h1", "bob@acme.io", "$argon2id$y").await,
        Err(Error::InviteUnusable)
    ));
    let (_, hash) = s.users().by_email("bob@acme.io").await.unwrap().unwrap();
    assert_eq!(hash.as_deref(), Some("$argon2id$x"));
    let listed = s.invites().list(Some("acme")).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|i| i.used_at.is_some()));
});

contract!(tokens_are_found_by_digest_and_revocable, |db| {
    let s = &db.store;
    s.orgs().create("acme", "admin").await.unwrap();
    let alice = s
        .users()
        .create(&user("alice@acme.io", "acme", Role::Developer), "admin")
        .await
        .unwrap();
    let t = s
        .tokens()
        .create(
            &NewToken {
                user_id: alice.id,
                name: "ci".into(),
                token_hash: "digest-1".into(),
                expires_at_ms: None,
            },
            "user:alice@acme.io",
        )
        .await
        .unwrap();
    let (found, owner) = s.tokens().by_hash("digest-1").await.unwrap().unwrap();
    assert_eq!((found.id, owner.id), (t.id, alice.id));
    assert!(found.revoked_at.is_none());
    assert!(s.tokens().by_hash("digest-2").await.unwrap().is_none());
    assert_eq!(
        s.tokens().list(Some(alice.id), None).await.unwrap().len(),
        1
    );
    assert_eq!(
        s.tokens().list(None, Some("default")).await.unwrap().len(),
        0
    );
    let revoked = s.tokens().revoke(t.id, "user:alice@acme.io").await.unwrap();
    let first = revoked.revoked_at.unwrap();
    let again = s.tokens().revoke(t.id, "user:alice@acme.io").await.unwrap();
    assert_eq!(again.revoked_at, Some(first));
    let (after, _) = s.tokens().by_hash("digest-1").await.unwrap().unwrap();
    assert!(after.revoked_at.is_some());
});
