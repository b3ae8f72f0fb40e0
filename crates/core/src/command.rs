//! Command lines: how a `command` string becomes argv, the same everywhere racer reads one (a
//! run config, a conda-project command, a spec).

/// Splits a command line into words the way Python's `shlex.split` does (POSIX mode, no
/// comments), which is how conda-project runs commands: quotes group, backslashes escape, and no
/// shell expands anything.
pub fn split_command(cmd: &str) -> Result<Vec<String>, String> {
    #[derive(PartialEq)]
    enum State {
        Between,
        Word,
        Single,
        Double,
    }
    let mut words = Vec::new();
    let mut word = String::new();
    let mut state = State::Between;
    let mut chars = cmd.chars().peekable();
    while let Some(c) = chars.next() {
        match state {
            State::Between | State::Word => match c {
                ' ' | '\t' | '\r' | '\n' => {
                    if state == State::Word {
                        words.push(std::mem::take(&mut word));
                        state = State::Between;
                    }
                }
                '\'' => state = State::Single,
                '"' => state = State::Double,
                '\\' => match chars.next() {
                    Some(n) => {
                        word.push(n);
                        state = State::Word;
                    }
                    None => return Err("no character after the final backslash".to_string()),
                },
                _ => {
                    word.push(c);
                    state = State::Word;
                }
            },
            State::Single => match c {
                '\'' => state = State::Word,
                _ => word.push(c),
            },
            State::Double => match c {
                '"' => state = State::Word,
                '\\' => match chars.peek() {
                    Some(&n) if n == '"' || n == '\\' => {
                        word.push(n);
                        chars.next();
                    }
                    _ => word.push('\\'),
                },
                _ => word.push(c),
            },
        }
    }
    match state {
        State::Single | State::Double => Err("no closing quotation".to_string()),
        State::Word => {
            words.push(word);
            Ok(words)
        }
        State::Between => Ok(words),
    }
}

#[cfg(test)]
mod tests {
    use super::split_command;

    #[test]
    fn splits_like_shlex() {
        assert_eq!(
            split_command("python -m app 'a b'").unwrap(),
            vec!["python", "-m", "app", "a b"]
        );
        assert!(split_command("echo 'oops").is_err());
    }
}
