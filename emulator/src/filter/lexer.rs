//! The tokenizer: filter text → tokens with the byte spans the parser
//! quotes in its messages. Strings are `'…'` with `''` for a quote; numbers
//! are optionally signed `i64`s; words are ASCII identifiers (keywords,
//! names and functions are told apart by the parser).

use super::FilterError;

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Tok<'t> {
    LParen,
    RParen,
    Comma,
    Str(String),
    Int(i64),
    Word(&'t str),
}

/// A token and the byte span of its source text.
#[derive(Debug, Clone)]
pub(super) struct Token<'t> {
    pub(super) kind: Tok<'t>,
    pub(super) start: usize,
    pub(super) end: usize,
}

/// Character (not byte) position of `byte` in `text`, for messages.
pub(super) fn position(text: &str, byte: usize) -> usize {
    text.get(..byte).map_or(0, |head| head.chars().count())
}

/// The tokens of `text`, or why it cannot be tokenized.
pub(super) fn tokenize(text: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let syntax = |reason: String| FilterError {
        expression: text.to_owned(),
        reason,
    };
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c.is_whitespace() {
            continue;
        }
        let kind = match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            ',' => Tok::Comma,
            '\'' => {
                let mut value = String::new();
                loop {
                    match chars.next() {
                        None => {
                            return Err(syntax(format!(
                                "Unterminated string literal at position {}.",
                                position(text, start)
                            )))
                        }
                        Some((_, '\'')) if chars.next_if(|&(_, n)| n == '\'').is_some() => {
                            value.push('\'');
                        }
                        Some((_, '\'')) => break,
                        Some((_, other)) => value.push(other),
                    }
                }
                Tok::Str(value)
            }
            '+' | '-' | '0'..='9' => {
                while chars.next_if(|&(_, n)| n.is_ascii_digit()).is_some() {}
                let end = chars.peek().map_or(text.len(), |&(i, _)| i);
                let literal = text.get(start..end).unwrap_or_default();
                match literal.parse::<i64>() {
                    Ok(value) => Tok::Int(value),
                    Err(_) if literal.len() > 1 => {
                        return Err(syntax(format!(
                            "Integer literal '{literal}' is out of range."
                        )))
                    }
                    Err(_) => {
                        return Err(syntax(format!(
                            "Unexpected character '{c}' at position {}.",
                            position(text, start)
                        )))
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                while chars
                    .next_if(|&(_, n)| n.is_ascii_alphanumeric() || n == '_')
                    .is_some()
                {}
                let end = chars.peek().map_or(text.len(), |&(i, _)| i);
                Tok::Word(text.get(start..end).unwrap_or_default())
            }
            other => {
                return Err(syntax(format!(
                    "Unexpected character '{other}' at position {}.",
                    position(text, start)
                )))
            }
        };
        let end = chars.peek().map_or(text.len(), |&(i, _)| i);
        tokens.push(Token { kind, start, end });
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::{tokenize, Tok};
    use crate::filter::fixtures::error;

    #[test]
    fn tokens_carry_their_byte_spans_and_unquoted_strings() {
        let text = "userId eq 'it''s' and (-1, é";
        let refused = tokenize(text).err().map(|e| e.reason);
        assert_eq!(
            refused.as_deref(),
            Some("Unexpected character 'é' at position 27.")
        );
        let tokens = tokenize("length('é''x') ge -12").unwrap_or_default();
        let kinds: Vec<_> = tokens.iter().map(|t| t.kind.clone()).collect();
        assert_eq!(
            kinds,
            [
                Tok::Word("length"),
                Tok::LParen,
                Tok::Str("é'x".to_owned()),
                Tok::RParen,
                Tok::Word("ge"),
                Tok::Int(-12),
            ]
        );
        let spans: Vec<_> = tokens.iter().map(|t| (t.start, t.end)).collect();
        assert_eq!(
            spans,
            [(0, 6), (6, 7), (7, 14), (14, 15), (16, 18), (19, 22)]
        );
    }

    #[test]
    fn lexical_errors_name_the_character_and_its_position() {
        assert_eq!(
            error("é eq 'x'").reason,
            "Unexpected character 'é' at position 0."
        );
        assert_eq!(
            error("'é' eq 'x").reason,
            "Unterminated string literal at position 7."
        );
        assert_eq!(
            error("1 eq 9223372036854775808").reason,
            "Integer literal '9223372036854775808' is out of range."
        );
    }
}
