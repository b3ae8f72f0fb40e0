//! `.dockerignore` matching with Docker's own rules.
//!
//! This is a port of `moby/patternmatcher` (what the Docker CLI and BuildKit use) and of its
//! `ignorefile.ReadAll`: `filepath.Match` syntax (`*`, `?`, `[...]`, `\` escapes) plus `**`, `!`
//! exceptions, the last matching pattern wins, a path is excluded when it or any of its parent
//! folders matches, and patterns are cleaned (`./`, leading `/`, `//`, `..`) before use.

use crate::Error;

/// One cleaned pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern, without its `!`.
    text: String,
    /// Whether this is an exception (`!pattern`).
    exclusion: bool,
    /// How it matches.
    kind: Kind,
}

impl Pattern {
    /// The cleaned pattern text, without the leading `!` of an exception.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether this pattern is an exception (`!pattern`) that re-includes paths.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }
}

/// The match strategies of patternmatcher, chosen when the pattern is compiled.
#[derive(Debug, Clone)]
enum Kind {
    /// The path equals the pattern.
    Exact,
    /// `literal/**`: the path starts with the literal part.
    Prefix(String),
    /// `**/literal`: the path ends with the literal part, or equals it without the leading `/`.
    Suffix(String),
    /// Anything with wildcards, matched like patternmatcher's regular expression.
    Glob(Vec<Token>),
}

/// One element of a compiled glob (each mirrors a piece of patternmatcher's regexp).
#[derive(Debug, Clone, PartialEq)]
enum Token {
    /// A literal character.
    Lit(char),
    /// `*`: any run of characters except `/` (`[^/]*`).
    Star,
    /// `?`: one character except `/` (`[^/]`).
    One,
    /// `**` followed by more pattern: nothing, or anything ending in `/` (`(.*/)?`).
    AnyDirs,
    /// `**` at the end of a pattern that is not a plain prefix: anything (`.*`).
    AnyRest,
    /// `[...]`: one character in (or, with `^`, not in) the ranges.
    Class {
        /// Whether the class is negated (`[^...]`).
        negated: bool,
        /// Inclusive character ranges; a single character is a range of one.
        ranges: Vec<(char, char)>,
    },
}

/// A compiled `.dockerignore`: decides whether a context path is excluded.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl Matcher {
    /// Compiles patterns the way `patternmatcher.New` does: each is trimmed and cleaned; empty
    /// ones are skipped; a leading `!` makes an exception. Fails on the first bad pattern with
    /// its index and the reason.
    pub fn new<S: AsRef<str>>(patterns: &[S]) -> Result<Matcher, (usize, String)> {
        let mut m = Matcher::default();
        for (i, p) in patterns.iter().enumerate() {
            let p = p.as_ref().trim();
            if p.is_empty() {
                continue;
            }
            let mut p = clean(p);
            let mut exclusion = false;
            if let Some(rest) = p.strip_prefix('!') {
                if rest.is_empty() {
                    return Err((i, "illegal exclusion pattern: \"!\"".to_string()));
                }
                exclusion = true;
                m.exclusions = true;
                p = rest.to_string();
            }
            let kind = compile(&p).map_err(|reason| (i, reason))?;
            m.patterns.push(Pattern {
                text: p,
                exclusion,
                kind,
            });
        }
        Ok(m)
    }

    /// Reads a `.dockerignore` file's text like Docker does (`ignorefile.ReadAll`: a UTF-8 BOM
    /// is dropped, lines starting with `#` are comments, lines are trimmed, each pattern is
    /// cleaned and a leading `/` removed) and compiles it.
    pub fn from_dockerignore(text: &str) -> Result<Matcher, Error> {
        let (lines, patterns) = read_patterns(text);
        Matcher::new(&patterns).map_err(|(i, reason)| Error::Dockerignore {
            line: lines.get(i).copied().unwrap_or(0),
            pattern: patterns.get(i).cloned().unwrap_or_default(),
            reason,
        })
    }

    /// Adds an exception pattern at the end (Docker re-includes `.dockerignore` and the
    /// Dockerfile this way).
    pub fn push_exception(&mut self, path: &str) {
        let text = clean(path);
        if let Ok(kind) = compile(&text) {
            self.exclusions = true;
            self.patterns.push(Pattern {
                text,
                exclusion: true,
                kind,
            });
        }
    }

    /// The compiled patterns, in order.
    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    /// Whether any pattern is an exception.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether the slash-separated, context-relative `path` is excluded: the last pattern that
    /// matches the path or one of its parent folders decides (`MatchesOrParentMatches`).
    pub fn matches(&self, path: &str) -> bool {
        let parent = dir_of(path);
        let parent_dirs: Vec<&str> = parent.split('/').collect();
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            let mut hit = p.matches(path);
            if !hit && parent != "." {
                for i in 0..parent_dirs.len() {
                    if p.matches(&parent_dirs[..=i].join("/")) {
                        hit = true;
                        break;
                    }
                }
            }
            if hit {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether an excluded folder must still be walked because an exception pattern starts with
    /// it (Docker's rule: only then can something inside it be re-included).
    pub fn may_include_inside(&self, dir: &str) -> bool {
        if !self.exclusions {
            return false;
        }
        let prefix = format!("{dir}/");
        self.patterns
            .iter()
            .any(|p| p.exclusion && format!("{}/", p.text).starts_with(&prefix))
    }
}

impl Pattern {
    fn matches(&self, path: &str) -> bool {
        match &self.kind {
            Kind::Exact => path == self.text,
            Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
            Kind::Suffix(suffix) => {
                path.ends_with(suffix.as_str())
                    || suffix.strip_prefix('/').is_some_and(|s| path == s)
            }
            Kind::Glob(tokens) => {
                let chars: Vec<char> = path.chars().collect();
                glob_match(tokens, &chars)
            }
        }
    }
}

/// Whether `tokens` match all of `path`. A table of which token suffixes match which path
/// suffixes is filled from the last token back, one row per token and only two rows kept:
/// O(tokens × path) time, O(path) memory and no recursion, whatever the pattern (a recursive
/// matcher overflowed the stack on a `.dockerignore` line of many `*`, and a table of every
/// token and path position took gigabytes for a long one).
fn glob_match(tokens: &[Token], path: &[char]) -> bool {
    // These tokens take exactly one character each: more of them than characters never match.
    let one_char = tokens
        .iter()
        .filter(|t| matches!(t, Token::Lit(_) | Token::One | Token::Class { .. }))
        .count();
    if one_char > path.len() {
        return false;
    }
    let n = path.len();
    // `next[pi]`: the tokens after the current one match `path[pi..]`; at first, no tokens,
    // which match only the end. `cur` is the row being filled for the current token.
    let mut next: Vec<bool> = (0..=n).map(|pi| pi == n).collect();
    let mut cur = vec![false; n + 1];
    for token in tokens.iter().rev() {
        // Each position `pi` of the row reads the character there, `next[pi]` (`here`: the rest
        // matches from `pi`) and `next[pi + 1]` (`then`: from after that character).
        cur[n] = match token {
            Token::Lit(_) | Token::One | Token::Class { .. } => false,
            Token::Star | Token::AnyRest | Token::AnyDirs => next[n],
        };
        let rows = cur[..n]
            .iter_mut()
            .zip(path)
            .zip(&next[..n])
            .zip(&next[1..]);
        match token {
            // One character that the token accepts, then the rest.
            Token::Lit(_) | Token::One | Token::Class { .. } => {
                for (((slot, &c), _), &then) in rows {
                    *slot = then && one_char_matches(token, c);
                }
            }
            // Any run of characters but `/`, then the rest.
            Token::Star => {
                let mut acc = next[n];
                for (((slot, &c), &here), _) in rows.rev() {
                    acc = here || (c != '/' && acc);
                    *slot = acc;
                }
            }
            // Anything at all, then the rest.
            Token::AnyRest => {
                let mut acc = next[n];
                for (((slot, _), &here), _) in rows.rev() {
                    acc = here || acc;
                    *slot = acc;
                }
            }
            // Nothing, or anything up to and including a `/`, then the rest.
            Token::AnyDirs => {
                let mut after_a_slash = false;
                for (((slot, &c), &here), &then) in rows.rev() {
                    after_a_slash |= c == '/' && then;
                    *slot = here || after_a_slash;
                }
            }
        }
        std::mem::swap(&mut cur, &mut next);
    }
    next[0]
}

/// Whether a one-character token accepts `c`.
fn one_char_matches(token: &Token, c: char) -> bool {
    match token {
        Token::Lit(l) => *l == c,
        Token::One => c != '/',
        Token::Class { negated, ranges } => {
            ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != *negated
        }
        Token::Star | Token::AnyRest | Token::AnyDirs => false,
    }
}

/// Compiles a cleaned pattern like `Pattern.compile`, choosing exact, prefix, suffix or glob.
fn compile(pattern: &str) -> Result<Kind, String> {
    #[derive(PartialEq, Clone, Copy)]
    enum Detected {
        Exact,
        Prefix,
        Suffix,
        Glob,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut detected = Detected::Exact;
    let mut pos = 0;
    let mut iteration = 0;
    while pos < chars.len() {
        let ch = chars[pos];
        pos += 1;
        match ch {
            '*' if chars.get(pos) == Some(&'*') => {
                pos += 1;
                if chars.get(pos) == Some(&'/') {
                    pos += 1;
                }
                if pos == chars.len() {
                    if detected == Detected::Exact {
                        detected = Detected::Prefix;
                    } else {
                        tokens.push(Token::AnyRest);
                        detected = Detected::Glob;
                    }
                } else {
                    tokens.push(Token::AnyDirs);
                    detected = Detected::Glob;
                }
                if iteration == 0 {
                    detected = Detected::Suffix;
                }
            }
            '*' => {
                tokens.push(Token::Star);
                detected = Detected::Glob;
            }
            '?' => {
                tokens.push(Token::One);
                detected = Detected::Glob;
            }
            '\\' => match chars.get(pos) {
                Some(&next) => {
                    pos += 1;
                    tokens.push(Token::Lit(next));
                    detected = Detected::Glob;
                }
                None => return Err("a trailing backslash escapes nothing".to_string()),
            },
            '[' => {
                let (token, next) = parse_class(&chars, pos)?;
                tokens.push(token);
                pos = next;
                detected = Detected::Glob;
            }
            ']' => {
                tokens.push(Token::Lit(']'));
                detected = Detected::Glob;
            }
            c => tokens.push(Token::Lit(c)),
        }
        iteration += 1;
    }
    Ok(match detected {
        Detected::Exact => Kind::Exact,
        Detected::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        Detected::Suffix => Kind::Suffix(pattern[2..].to_string()),
        Detected::Glob => Kind::Glob(tokens),
    })
}

/// Parses a character class whose `[` is just before `start`; returns the token and the
/// position after the closing `]`. Malformed classes are errors, as in `filepath.Match`.
fn parse_class(chars: &[char], start: usize) -> Result<(Token, usize), String> {
    let mut pos = start;
    let negated = chars.get(pos) == Some(&'^');
    if negated {
        pos += 1;
    }
    let mut ranges = Vec::new();
    let bad = || "unterminated or malformed character class".to_string();
    loop {
        match chars.get(pos) {
            None => return Err(bad()),
            Some(']') if !ranges.is_empty() => {
                return Ok((Token::Class { negated, ranges }, pos + 1))
            }
            _ => {}
        }
        let (lo, next) = class_char(chars, pos).ok_or_else(bad)?;
        pos = next;
        let mut hi = lo;
        if chars.get(pos) == Some(&'-') {
            let (h, next) = class_char(chars, pos + 1).ok_or_else(bad)?;
            hi = h;
            pos = next;
            if hi < lo {
                return Err(bad());
            }
        }
        ranges.push((lo, hi));
    }
}

/// One (possibly escaped) character of a class; `]` and `-` are not allowed unescaped.
fn class_char(chars: &[char], pos: usize) -> Option<(char, usize)> {
    match chars.get(pos)? {
        ']' | '-' => None,
        '\\' => chars.get(pos + 1).map(|c| (*c, pos + 2)),
        c => Some((*c, pos + 1)),
    }
}

/// The patterns of a `.dockerignore` and the 1-based line each came from
/// (`ignorefile.ReadAll`).
pub fn read_patterns(text: &str) -> (Vec<usize>, Vec<String>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = Vec::new();
    let mut patterns = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut p = String::new();
        if !pattern.is_empty() {
            p = clean(pattern);
            if p.len() > 1 && p.starts_with('/') {
                p.remove(0);
            }
        }
        if invert {
            p.insert(0, '!');
        }
        lines.push(i + 1);
        patterns.push(p);
    }
    (lines, patterns)
}

/// Go's `filepath.Clean` for slash-separated paths: one `/` between elements, no `.` elements,
/// `..` folded into its parent where there is one, no trailing `/`; empty becomes `.`.
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match out.last() {
                Some(last) if *last != ".." => {
                    out.pop();
                }
                _ if rooted => {}
                _ => out.push(".."),
            },
            p => out.push(p),
        }
    }
    let joined = out.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_string(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Dir` for a clean relative path: everything before the last `/`, or `.`.
fn dir_of(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..i]),
        None => ".".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(text: &str) -> Matcher {
        Matcher::from_dockerignore(text).unwrap()
    }

    #[test]
    fn star_slash_temp_star_is_one_level_deep() {
        // Docker docs: `*/temp*` excludes files and folders starting with `temp` in any
        // immediate subdirectory of the root.
        let m = m("# comment\n*/temp*\n");
        assert!(m.matches("somedir/temporary.txt"));
        assert!(m.matches("somedir/temp"));
        assert!(m.matches("somedir/temp/inner.txt"));
        assert!(!m.matches("temporary.txt"));
        assert!(!m.matches("a/b/temp.txt"));
    }

    #[test]
    fn two_levels_deep() {
        // Docker docs: `*/*/temp*` excludes `/somedir/subdir/temporary.txt`.
        let m = m("*/*/temp*");
        assert!(m.matches("somedir/subdir/temporary.txt"));
        assert!(!m.matches("somedir/temporary.txt"));
        assert!(!m.matches("temporary.txt"));
    }

    #[test]
    fn question_mark_is_one_character() {
        // Docker docs: `temp?` excludes `/tempa` and `/tempb` at the root.
        let m = m("temp?");
        assert!(m.matches("tempa"));
        assert!(m.matches("tempb"));
        assert!(m.matches("tempb/inside"));
        assert!(!m.matches("temp"));
        assert!(!m.matches("tempab"));
        assert!(!m.matches("dir/tempa"));
        assert!(!m.matches("temp/"));
    }

    #[test]
    fn double_star_matches_any_depth() {
        // Docker docs: `**/*.go` excludes all files ending in .go, everywhere.
        let m = m("**/*.go");
        assert!(m.matches("main.go"));
        assert!(m.matches("a/main.go"));
        assert!(m.matches("a/b/c/main.go"));
        assert!(!m.matches("main.gox"));
        assert!(!m.matches("go"));
    }

    #[test]
    fn exception_reincludes() {
        // Docker docs: all markdown files but README.md.
        let m = m("*.md\n!README.md\n");
        assert!(m.matches("CHANGES.md"));
        assert!(!m.matches("README.md"));
        assert!(!m.matches("docs/guide.md"), "*.md is root-level only");
    }

    #[test]
    fn exception_ordering_last_match_wins() {
        // Docker docs: with `README-secret.md` after `!README*.md`, the secret stays out...
        let m1 = m("*.md\n!README*.md\nREADME-secret.md\n");
        assert!(m1.matches("README-secret.md"));
        assert!(!m1.matches("README-public.md"));
        assert!(m1.matches("other.md"));
        // ...and with the exception last, every README, the secret one too, is sent.
        let m2 = m("*.md\nREADME-secret.md\n!README*.md\n");
        assert!(!m2.matches("README-secret.md"));
        assert!(!m2.matches("README-public.md"));
        assert!(m2.matches("other.md"));
    }

    #[test]
    fn parent_folder_match_excludes_children() {
        let m = m("vendor\nnode_modules/\n");
        assert!(m.matches("vendor"));
        assert!(m.matches("vendor/a/b.go"));
        assert!(m.matches("node_modules/x/index.js"));
        assert!(!m.matches("src/vendor"));
    }

    #[test]
    fn leading_slash_and_dot_are_stripped_and_paths_cleaned() {
        let m = m("/secret\n./build\nlogs//old/../*.log\n");
        assert!(m.matches("secret"));
        assert!(m.matches("build/out.o"));
        assert!(m.matches("logs/today.log"));
        assert!(!m.matches("logs/old/today.log"));
        let pats: Vec<&str> = m.patterns().iter().map(Pattern::as_str).collect();
        assert_eq!(pats, vec!["secret", "build", "logs/*.log"]);
    }

    #[test]
    fn prefix_and_suffix_double_stars() {
        let m1 = m("foo/**");
        assert!(m1.matches("foo/a"));
        assert!(m1.matches("foo/a/b"));
        assert!(!m1.matches("foobar"));
        let m2 = m("**/foo");
        assert!(m2.matches("foo"));
        assert!(m2.matches("a/b/foo"));
        assert!(m2.matches("a/foo/inner"));
        assert!(!m2.matches("afoo"));
        let m3 = m("**/foo/**");
        assert!(m3.matches("a/foo/b"));
        assert!(m3.matches("foo/b"));
        let m4 = m("**");
        assert!(m4.matches("anything/at/all"));
        let m5 = m("a/**/b");
        assert!(m5.matches("a/b"));
        assert!(m5.matches("a/x/y/b"));
        assert!(!m5.matches("a/xb"));
    }

    #[test]
    fn classes_and_escapes() {
        let m1 = m("file[0-9].txt\n");
        assert!(m1.matches("file1.txt"));
        assert!(!m1.matches("filea.txt"));
        let m2 = m("[^a]x");
        assert!(m2.matches("bx"));
        assert!(!m2.matches("ax"));
        let m3 = m("star\\*");
        assert!(m3.matches("star*"));
        assert!(!m3.matches("starx"));
        let m4 = m("a.b+c(d)");
        assert!(m4.matches("a.b+c(d)"));
        assert!(!m4.matches("aXb+c(d)"));
    }

    #[test]
    fn bad_patterns_are_errors_with_their_line() {
        let err = Matcher::from_dockerignore("ok\n\n[abc\n").unwrap_err();
        assert!(
            matches!(err, Error::Dockerignore { line: 3, ref pattern, .. } if pattern == "[abc"),
            "{err}"
        );
        assert!(Matcher::from_dockerignore("!").is_err());
        assert!(Matcher::from_dockerignore("a\\").is_err());
        assert!(Matcher::from_dockerignore("[]a]").is_err());
    }

    #[test]
    fn exceptions_decide_whether_to_walk_excluded_folders() {
        let m = m("docs\n!docs/keep.md\n");
        assert!(m.may_include_inside("docs"));
        assert!(!m.may_include_inside("src"));
        assert!(!m.matches("docs/keep.md"));
        assert!(m.matches("docs/other.md"));
        let none = Matcher::from_dockerignore("docs").unwrap();
        assert!(!none.may_include_inside("docs"));
    }

    /// Found with the `dockerignore` fuzz target (`fuzz/`, docs/FUZZING.md, a 200 KB line
    /// run through it): the recursive matcher overflowed the stack on a long run of `*` (a
    /// crash of the whole server: the builder packs contexts on a 2 MiB blocking thread), and
    /// allocated a table of every token and path position for each match (a long `?` run
    /// against deep paths ran past the target's timeout).
    #[test]
    fn long_patterns_neither_overflow_the_stack_nor_blow_up() {
        let worker = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let stars = m(&format!("{}x\n", "*".repeat(200_000)));
                assert!(stars.matches("x") && stars.matches("a/b/x"));
                assert!(!stars.matches("ax"));
                let ones = m(&"?".repeat(300_000));
                let deep = format!("{}b", "a/".repeat(2_000));
                assert!(!ones.matches(&deep));
                let started = std::time::Instant::now();
                let slashes = m(&format!("{}b", "**/".repeat(2_000)));
                assert!(slashes.matches(&deep));
                assert!(started.elapsed() < std::time::Duration::from_secs(20));
            })
            .unwrap();
        worker.join().unwrap();
    }

    #[test]
    fn clean_like_go() {
        assert_eq!(clean(""), ".");
        assert_eq!(clean("./a//b/"), "a/b");
        assert_eq!(clean("a/../../b"), "../b");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean("/"), "/");
        assert_eq!(dir_of("a/b/c"), "a/b");
        assert_eq!(dir_of("a"), ".");
    }
}
