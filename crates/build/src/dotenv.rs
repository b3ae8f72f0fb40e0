//! A project's `.env` file, read as the reference reads it: python-dotenv's `dotenv_values`
//! (parser.py and variables.py of python-dotenv 1.2): `KEY=value` lines, an optional `export `,
//! single- and double-quoted values (multi-line, with their escapes), ` # comments`, a key with
//! no `=` (no value: `None`), and `${NAME}` / `${NAME:-default}` expanded from the values above
//! it. One difference on purpose: python-dotenv also expands from the environment of the process
//! that reads the file (the user's shell at `conda project run`); racer reads the file on the
//! server, whose environment is not the app's, so only the file's own values are used.

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
}

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

    fn line_of(&self, pos: usize) -> usize {
        let before = &self.s[..pos];
        // `\r\n`, `\n` and `\r` each end a line.
        1 + before.matches("\r\n").count()
            + before.matches('\n').count()
            + before.matches('\r').count()
            - before.matches("\r\n").count()
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

/// Expands `${NAME}` and `${NAME:-default}` from `known`; names it does not hold are pushed to
/// `unresolved`.
fn expand(value: &str, known: &[(String, Option<String>)], unresolved: &mut Vec<String>) -> String {
    let mut out = String::new();
    let mut rest = value;
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
                    out.push_str(&rest[..start + 2]);
                    rest = after;
                    continue;
                }
            }
        } else {
            // Not a reference (`${A:B}`, or no closing brace): kept as written.
            out.push_str(&rest[..start + 2]);
            rest = after;
            continue;
        };
        out.push_str(&rest[..start]);
        match known.iter().rev().find(|(k, _)| k == name) {
            Some((_, v)) => out.push_str(v.as_deref().unwrap_or("")),
            None => {
                if !unresolved.iter().any(|u| u == name) {
                    unresolved.push(name.to_owned());
                }
                out.push_str(default.unwrap_or(""));
            }
        }
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

/// Parses a `.env` file's text as python-dotenv's `dotenv_values` does (with interpolation).
pub fn parse(text: &str) -> DotEnv {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut r = Reader { s: text, pos: 0 };
    let mut out = DotEnv::default();
    while r.pos < text.len() {
        let start = r.pos;
        match r.binding() {
            Ok(None) => {}
            Ok(Some((key, value))) => {
                let value = value.map(|v| expand(&v, &out.values, &mut out.unresolved));
                out.values.retain(|(k, _)| *k != key);
                out.values.push((key, value));
            }
            Err(Skip) => {
                out.skipped_lines.push(r.line_of(
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
    out
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

    #[test]
    fn bad_lines_are_skipped_and_later_keys_win() {
        let env = parse("A=1\n=oops\nB=\"unterminated\nA=2\n");
        assert_eq!(env.values, vec![kv("A", Some("2"))]);
        assert_eq!(env.skipped_lines, vec![2, 3]);
    }
}
