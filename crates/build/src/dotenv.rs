//! A project's `.env` file, read as the reference reads it: python-dotenv's `dotenv_values`
//! (parser.py and variables.py of python-dotenv 1.2): `KEY=value` lines, an optional `export `,
//! single- and double-quoted values (multi-line, with their escapes), ` # comments`, a key with
//! no `=` (no value: `None`), and `${NAME}` / `${NAME:-default}` expanded from the values above
//! it. One difference on purpose: python-dotenv also expands from the environment of the process
//! that reads the file (the user's shell at `conda project run`); racer reads the file on the
//! server, whose environment is not the app's, so only the file's own values are used.

use std::collections::{HashMap, HashSet};

/// One `.env` file's bindings in file order (a later binding of a key replaces an earlier one),
/// and the lines python-dotenv would skip as unparsable (1-based).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DotEnv {
    /// Key → value (`None`: the key has no `=`).
    pub values: Vec<(String, Option<String>)>,
    /// Lines that could not be parsed; python-dotenv skips them with a warning.
    pub skipped_lines: Vec<usize>,
    /// `${NAME}` references to names the file does not define above them (expanded to their
    /// default, else empty).
    pub unresolved: Vec<String>,
    /// Keys whose value was cut short because expanding it would take the file's values past
    /// [`MAX_EXPANDED_BYTES`] (python-dotenv has no limit: a few lines of references to
    /// references ask for gigabytes).
    pub oversized: Vec<String>,
}

/// The most bytes the values of one file may hold in all once `${...}` references are
/// expanded: four times the largest file racer reads, far more than any real file needs.
pub const MAX_EXPANDED_BYTES: usize = 4 * crate::yaml::MAX_FILE_BYTES as usize;

/// Python's `\s` (Unicode): Rust's whitespace plus the information separators.
fn is_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `[^\S\r\n]`: whitespace that does not end a line.
fn is_blank(c: char) -> bool {
    is_space(c) && c != '\r' && c != '\n'
}

struct Reader<'a> {
    s: &'a str,
    pos: usize,
}

/// A parse failure of one binding; the rest of its line is skipped.
struct Skip;

impl<'a> Reader<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat_while(&mut self, f: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let n = rest.find(|c| !f(c)).unwrap_or(rest.len());
        self.pos += n;
        &rest[..n]
    }

    /// The 1-based line of byte `pos`, `line_starts` being where each line after the first
    /// starts (`\r\n`, `\n` and `\r` each end a line).
    fn line_of(line_starts: &[usize], pos: usize) -> usize {
        1 + line_starts.partition_point(|&start| start <= pos)
    }

    /// `'...'` or `"..."` with `\`-escapes kept as written: the text inside, or `Skip`.
    fn quoted(&mut self, quote: char) -> Result<&'a str, Skip> {
        let rest = self.rest();
        let mut chars = rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            if c == '\\' {
                if chars.next().is_none() {
                    return Err(Skip);
                }
            } else if c == quote {
                self.pos += i + 1;
                return Ok(&rest[1..i]);
            }
        }
        Err(Skip)
    }

    fn binding(&mut self) -> Result<Option<(String, Option<String>)>, Skip> {
        self.eat_while(is_space);
        if self.rest().is_empty() {
            return Ok(None);
        }
        // `export` and at least one blank.
        if let Some(after) = self.rest().strip_prefix("export") {
            let blanks = after.len() - after.trim_start_matches(is_blank).len();
            if blanks > 0 {
                self.pos += "export".len() + blanks;
            }
        }
        let key = match self.peek() {
            Some('#') => None,
            Some('\'') => {
                let rest = self.rest();
                match rest[1..].find('\'') {
                    Some(n) if n > 0 => {
                        self.pos += n + 2;
                        Some(rest[1..=n].to_owned())
                    }
                    _ => return Err(Skip),
                }
            }
            _ => {
                let k = self.eat_while(|c| c != '=' && c != '#' && !is_space(c));
                if k.is_empty() {
                    return Err(Skip);
                }
                Some(k.to_owned())
            }
        };
        self.eat_while(is_blank);
        let value = if self.peek() == Some('=') {
            self.pos += 1;
            let blanks = self.eat_while(is_blank).len();
            match self.peek() {
                Some('#') if blanks > 0 => Some(String::new()),
                Some('\'') => Some(unescape(self.quoted('\'')?, false)),
                Some('"') => Some(unescape(self.quoted('"')?, true)),
                None | Some('\n') | Some('\r') => Some(String::new()),
                _ => Some(unquoted(self.eat_while(|c| c != '\r' && c != '\n'))),
            }
        } else {
            None
        };
        // An optional comment, then the end of the line.
        let save = self.pos;
        self.eat_while(is_blank);
        if self.peek() == Some('#') {
            self.eat_while(|c| c != '\r' && c != '\n');
        } else {
            self.pos = save;
        }
        self.eat_while(is_blank);
        match self.peek() {
            None => {}
            Some('\n') => self.pos += 1,
            Some('\r') => {
                self.pos += if self.rest().starts_with("\r\n") {
                    2
                } else {
                    1
                }
            }
            Some(_) => return Err(Skip),
        }
        Ok(key.map(|k| (k, value)))
    }
}

/// An unquoted value: up to a blank-then-`#` comment, trailing blanks removed.
fn unquoted(part: &str) -> String {
    let mut cut = part.len();
    let mut run_start = None;
    for (i, c) in part.char_indices() {
        if is_space(c) {
            run_start.get_or_insert(i);
        } else {
            if c == '#' {
                if let Some(s) = run_start {
                    cut = s;
                    break;
                }
            }
            run_start = None;
        }
    }
    part[..cut].trim_end_matches(is_space).to_owned()
}

/// python-dotenv's escapes: in double quotes `\\ \' \" \a \b \f \n \r \t \v`; in single quotes
/// `\\` and `\'`. Any other backslash stays as written.
fn unescape(s: &str, double: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.peek().copied() {
            Some('\\') => Some('\\'),
            Some('\'') => Some('\''),
            Some('"') if double => Some('"'),
            Some('a') if double => Some('\u{7}'),
            Some('b') if double => Some('\u{8}'),
            Some('f') if double => Some('\u{c}'),
            Some('n') if double => Some('\n'),
            Some('r') if double => Some('\r'),
            Some('t') if double => Some('\t'),
            Some('v') if double => Some('\u{b}'),
            _ => None,
        };
        match decoded {
            Some(d) => {
                chars.next();
                out.push(d);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// The bindings read so far, with an index by key, and what expanding them has cost.
#[derive(Default)]
struct Known {
    /// Bindings in file order; a rebound key leaves `None` where it was.
    values: Vec<Option<(String, Option<String>)>>,
    /// Key → its place in `values`.
    index: HashMap<String, usize>,
    unresolved: Vec<String>,
    unresolved_set: HashSet<String>,
    /// Bytes of expanded values so far, against [`MAX_EXPANDED_BYTES`].
    expanded: usize,
}

impl Known {
    fn get(&self, key: &str) -> Option<&Option<String>> {
        let i = *self.index.get(key)?;
        self.values.get(i)?.as_ref().map(|(_, v)| v)
    }

    /// Binds `key`; an earlier binding of it is dropped, so the key takes the place of its last
    /// binding.
    fn bind(&mut self, key: String, value: Option<String>) {
        if let Some(i) = self.index.insert(key.clone(), self.values.len()) {
            if let Some(slot) = self.values.get_mut(i) {
                *slot = None;
            }
        }
        self.values.push(Some((key, value)));
    }
}

/// Expands `${NAME}` and `${NAME:-default}` from `known`; names it does not hold are recorded
/// as unresolved. `None` when the expansion would take the file past [`MAX_EXPANDED_BYTES`].
fn expand(value: &str, known: &mut Known) -> Option<String> {
    let mut out = String::new();
    let mut rest = value;
    let budget = MAX_EXPANDED_BYTES.saturating_sub(known.expanded);
    let push = |out: &mut String, s: &str| -> Option<()> {
        if out.len() + s.len() > budget {
            return None;
        }
        out.push_str(s);
        Some(())
    };
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let name_len = after.find(['}', ':']).unwrap_or(after.len());
        let name = &after[..name_len];
        let tail = &after[name_len..];
        let (default, consumed) = if tail.starts_with('}') {
            (None, name_len + 1)
        } else if let Some(d) = tail.strip_prefix(":-") {
            match d.find('}') {
                Some(n) => (Some(&d[..n]), name_len + 2 + n + 1),
                None => {
                    push(&mut out, &rest[..start + 2])?;
                    rest = after;
                    continue;
                }
            }
        } else {
            // Not a reference (`${A:B}`, or no closing brace): kept as written.
            push(&mut out, &rest[..start + 2])?;
            rest = after;
            continue;
        };
        push(&mut out, &rest[..start])?;
        match known.get(name) {
            Some(v) => push(&mut out, v.as_deref().unwrap_or(""))?,
            None => {
                if known.unresolved_set.insert(name.to_owned()) {
                    known.unresolved.push(name.to_owned());
                }
                push(&mut out, default.unwrap_or(""))?;
            }
        }
        rest = &after[consumed..];
    }
    push(&mut out, rest)?;
    known.expanded += out.len();
    Some(out)
}

/// Parses a `.env` file's text as python-dotenv's `dotenv_values` does (with interpolation).
pub fn parse(text: &str) -> DotEnv {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let line_starts: Vec<usize> = text
        .char_indices()
        .filter(|&(i, c)| c == '\n' || (c == '\r' && !text[i + 1..].starts_with('\n')))
        .map(|(i, _)| i + 1)
        .collect();
    let mut r = Reader { s: text, pos: 0 };
    let mut known = Known::default();
    let mut skipped_lines = Vec::new();
    let mut oversized = Vec::new();
    while r.pos < text.len() {
        let start = r.pos;
        match r.binding() {
            Ok(None) => {}
            Ok(Some((key, value))) => {
                let value = match value {
                    Some(v) => match expand(&v, &mut known) {
                        Some(v) => Some(v),
                        None => {
                            oversized.push(key.clone());
                            Some(String::new())
                        }
                    },
                    None => None,
                };
                known.bind(key, value);
            }
            Err(Skip) => {
                skipped_lines.push(Reader::line_of(
                    &line_starts,
                    start
                        + (text[start..].len() - text[start..].trim_start_matches(is_space).len()),
                ));
                r.eat_while(|c| c != '\r' && c != '\n');
                match r.peek() {
                    Some('\r') if r.rest().starts_with("\r\n") => r.pos += 2,
                    Some('\r') | Some('\n') => r.pos += 1,
                    _ => {}
                }
            }
        }
    }
    DotEnv {
        values: known.values.into_iter().flatten().collect(),
        skipped_lines,
        unresolved: known.unresolved,
        oversized,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(text: &str) -> Vec<(String, Option<String>)> {
        parse(text).values
    }

    fn kv(k: &str, v: Option<&str>) -> (String, Option<String>) {
        (k.to_owned(), v.map(str::to_owned))
    }

    #[test]
    fn plain_export_quotes_and_comments() {
        let text = "# a comment\nA=1\nexport B = two words  # note\nC='single # kept'\nD=\"x\\ny\\\"z\"\nE=\nF= # empty\nG=#novalue\nH\n'I'=i\n";
        assert_eq!(
            values(text),
            vec![
                kv("A", Some("1")),
                kv("B", Some("two words")),
                kv("C", Some("single # kept")),
                kv("D", Some("x\ny\"z")),
                kv("E", Some("")),
                kv("F", Some("")),
                kv("G", Some("#novalue")),
                kv("H", None),
                kv("I", Some("i")),
            ]
        );
    }

    #[test]
    fn multiline_quotes_and_escapes() {
        assert_eq!(
            values("K=\"line1\nline2\"\nS='a\\'b\\\\c\\n'\n"),
            vec![kv("K", Some("line1\nline2")), kv("S", Some("a'b\\c\\n"))]
        );
    }

    #[test]
    fn interpolation_from_the_file_only() {
        let env = parse("A=x\nB=${A}-${A:-d}\nC=${MISSING:-dflt}${NONE}\nD='${A}'\nE=${A:B}\n");
        assert_eq!(
            env.values,
            vec![
                kv("A", Some("x")),
                kv("B", Some("x-x")),
                kv("C", Some("dflt")),
                kv("D", Some("x")),
                kv("E", Some("${A:B}")),
            ]
        );
        assert_eq!(env.unresolved, vec!["MISSING", "NONE"]);
    }

    /// Found with the `dotenv` fuzz target (`fuzz/`, docs/FUZZING.md): every skipped line
    /// counted the lines before it from the start of the file, and every binding searched all
    /// the ones before it, so a 1 MiB `.env` (the largest racer reads) of bad lines or of
    /// distinct keys ran past the target's timeout: minutes of the server's CPU.
    #[test]
    fn large_files_parse_in_linear_time() {
        let n = 100_000;
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!("k{i}=${{k{}}}\n=bad\r\n", i / 2));
        }
        let started = std::time::Instant::now();
        let env = parse(&text);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(env.values.len(), n);
        assert_eq!(env.skipped_lines.len(), n);
        assert_eq!(env.skipped_lines[n - 1], 2 * n);
        assert_eq!(env.unresolved, vec!["k0"]);
    }

    /// Found with the `dotenv` fuzz target (`fuzz/`, docs/FUZZING.md): each `${...}` copies a
    /// value, so a 3 KB file of references to references (a "billion laughs" for `.env`) ran
    /// the target out of memory (one 3.2 GB allocation).
    #[test]
    fn reference_bombs_are_cut_short() {
        let mut text = format!("A0={}\n", "x".repeat(100));
        for i in 1..8 {
            text.push_str(&format!(
                "A{i}={}\n",
                format!("${{A{}}}", i - 1).repeat(100)
            ));
        }
        let env = parse(&text);
        let total: usize = env
            .values
            .iter()
            .map(|(_, v)| v.as_ref().map_or(0, String::len))
            .sum();
        assert!(total <= MAX_EXPANDED_BYTES, "{total}");
        assert_eq!(env.oversized, vec!["A3"]);
        assert_eq!(env.values[2].1.as_ref().map(String::len), Some(1_000_000));
    }

    #[test]
    fn bad_lines_are_skipped_and_later_keys_win() {
        let env = parse("A=1\n=oops\nB=\"unterminated\nA=2\n");
        assert_eq!(env.values, vec![kv("A", Some("2"))]);
        assert_eq!(env.skipped_lines, vec![2, 3]);
    }
}
