//! Workspace sync between a claimed container and an S3 prefix (issue 15), as a pure plan.
//!
//! Each side is a map of path → version: the container's files by MD5 of their contents, the
//! bucket's objects by ETag; both with a modification time. `synced` is what both sides held at
//! the last sync (the container's MD5 and the bucket's ETag of each path). A side changed a path
//! when its version differs from `synced`; a path changed on one side only goes to the other,
//! a path changed on both is a conflict the newer side wins (a deletion never beats a change:
//! data is kept).

use std::collections::{BTreeMap, BTreeSet};

/// One side's version of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// MD5 (container) or ETag (bucket), lowercase hex, no quotes.
    pub tag: String,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
}

/// What both sides held of a path at the last sync.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Synced {
    /// The container's MD5 (empty: it had none).
    pub local: String,
    /// The bucket's ETag (empty: it had none).
    pub remote: String,
}

/// One step of a sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Upload the container's file.
    Push(String),
    /// Download the object into the container.
    Pull(String),
    /// Delete the object (the container deleted the file).
    DeleteRemote(String),
    /// The bucket deleted an object the container still has unchanged.
    DeleteLocal(String),
}

impl Step {
    /// The path it concerns.
    pub fn path(&self) -> &str {
        match self {
            Step::Push(p) | Step::Pull(p) | Step::DeleteRemote(p) | Step::DeleteLocal(p) => p,
        }
    }
}

/// The plan, and the paths that were in conflict (changed on both sides), with the winner.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// Steps, by path.
    pub steps: Vec<Step>,
    /// `(path, "container" | "bucket")` for each conflict.
    pub conflicts: Vec<(String, &'static str)>,
}

/// Plans a sync. Paths equal on both sides need no step.
pub fn plan(
    local: &BTreeMap<String, Version>,
    remote: &BTreeMap<String, Version>,
    synced: &BTreeMap<String, Synced>,
) -> Plan {
    let mut out = Plan::default();
    let paths: BTreeSet<&String> = local.keys().chain(remote.keys()).collect();
    for path in paths {
        let (l, r) = (local.get(path), remote.get(path));
        let s = synced.get(path).cloned().unwrap_or_default();
        if let (Some(l), Some(r)) = (l, r) {
            if l.tag == r.tag || (l.tag == s.local && r.tag == s.remote) {
                continue;
            }
        }
        let l_changed = l.map_or(String::new(), |v| v.tag.clone()) != s.local;
        let r_changed = r.map_or(String::new(), |v| v.tag.clone()) != s.remote;
        let p = path.clone();
        let step = match (l_changed, r_changed) {
            (false, false) => None,
            (true, false) => Some(if l.is_some() {
                Step::Push(p)
            } else {
                Step::DeleteRemote(p)
            }),
            (false, true) => Some(if r.is_some() {
                Step::Pull(p)
            } else {
                Step::DeleteLocal(p)
            }),
            (true, true) => {
                let local_wins = match (l, r) {
                    (Some(l), Some(r)) => l.mtime >= r.mtime,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (None, None) => continue,
                };
                out.conflicts
                    .push((p.clone(), if local_wins { "container" } else { "bucket" }));
                Some(if local_wins {
                    Step::Push(p)
                } else {
                    Step::Pull(p)
                })
            }
        };
        out.steps.extend(step);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(tag: &str, mtime: i64) -> Version {
        Version {
            tag: tag.into(),
            mtime,
        }
    }

    fn map(entries: &[(&str, Version)]) -> BTreeMap<String, Version> {
        entries
            .iter()
            .map(|(p, v)| ((*p).to_owned(), v.clone()))
            .collect()
    }

    fn synced(entries: &[(&str, &str, &str)]) -> BTreeMap<String, Synced> {
        entries
            .iter()
            .map(|(p, l, r)| {
                (
                    (*p).to_owned(),
                    Synced {
                        local: (*l).into(),
                        remote: (*r).into(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn a_restore_pulls_everything_and_a_first_push_pushes_everything() {
        let remote = map(&[("a", v("1", 0)), ("d/b", v("2", 0))]);
        let p = plan(&BTreeMap::new(), &remote, &BTreeMap::new());
        assert_eq!(
            p.steps,
            vec![Step::Pull("a".into()), Step::Pull("d/b".into())]
        );
        let p = plan(&remote, &BTreeMap::new(), &BTreeMap::new());
        assert_eq!(
            p.steps,
            vec![Step::Push("a".into()), Step::Push("d/b".into())]
        );
    }

    #[test]
    fn one_sided_changes_and_deletions_go_to_the_other_side() {
        let s = synced(&[
            ("a", "1", "e1"),
            ("b", "2", "e2"),
            ("c", "3", "e3"),
            ("d", "4", "e4"),
        ]);
        let local = map(&[("a", v("1x", 5)), ("c", v("3", 0)), ("d", v("4", 0))]);
        let remote = map(&[("a", v("e1", 0)), ("b", v("e2", 0)), ("d", v("e4x", 9))]);
        let p = plan(&local, &remote, &s);
        assert_eq!(
            p.steps,
            vec![
                Step::Push("a".into()),
                Step::DeleteRemote("b".into()),
                Step::DeleteLocal("c".into()),
                Step::Pull("d".into()),
            ]
        );
        assert!(p.conflicts.is_empty());
    }

    #[test]
    fn unchanged_and_equal_paths_need_nothing() {
        let s = synced(&[("a", "1", "e1")]);
        let same = plan(&map(&[("a", v("1", 0))]), &map(&[("a", v("e1", 0))]), &s);
        assert!(same.steps.is_empty());
        // Equal content on both sides (single-part ETag = MD5) needs nothing either.
        let eq = plan(
            &map(&[("n", v("m", 0))]),
            &map(&[("n", v("m", 0))]),
            &BTreeMap::new(),
        );
        assert!(eq.steps.is_empty());
    }

    #[test]
    fn conflicts_go_to_the_newer_side_and_a_change_beats_a_deletion() {
        let s = synced(&[("a", "1", "e1"), ("b", "2", "e2"), ("c", "3", "e3")]);
        let local = map(&[("a", v("1x", 10)), ("b", v("2x", 10))]);
        let remote = map(&[("a", v("e1x", 20)), ("b", v("e2x", 5)), ("c", v("e3x", 1))]);
        let p = plan(&local, &remote, &s);
        assert_eq!(
            p.steps,
            vec![
                Step::Pull("a".into()),
                Step::Push("b".into()),
                Step::Pull("c".into()),
            ]
        );
        assert_eq!(
            p.conflicts,
            vec![
                ("a".to_owned(), "bucket"),
                ("b".to_owned(), "container"),
                ("c".to_owned(), "bucket"),
            ]
        );
    }
}
