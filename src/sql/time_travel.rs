//! Databend's time travel clause, `t AT (SNAPSHOT => 'id')` and
//! `t AT (TIMESTAMP => expr)`, which PostgreSQL's grammar does not have.
//!
//! Before parsing, the token stream is rewritten so that such a table
//! reference becomes a call of the table function
//! `fuse_time_travel('<db>', '<table>', 'snapshot' | 'timestamp', <value>)`
//! aliased as the table, which the query layer answers with the table pinned
//! at that point of its history.

use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::query::TIME_TRAVEL_FUNCTION;

fn is_space(t: &Token) -> bool {
    matches!(t, Token::Whitespace(_))
}

fn word_is(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
}

/// Index of the next non-whitespace token at or after `i`.
fn skip(tokens: &[TokenWithSpan], mut i: usize) -> usize {
    while i < tokens.len() && is_space(&tokens[i].token) {
        i += 1;
    }
    i
}

fn ident_text(t: &Token) -> Option<String> {
    match t {
        Token::Word(w) if w.quote_style.is_some() => Some(w.value.clone()),
        Token::Word(w) => Some(w.value.to_lowercase()),
        _ => None,
    }
}

fn plain(token: Token) -> TokenWithSpan {
    TokenWithSpan::wrap(token)
}

/// Rewrites every `<name> AT ( SNAPSHOT|TIMESTAMP => <value> )` in `tokens`.
pub fn rewrite(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if let Some((replacement, next)) = match_at(&tokens, i) {
            // Drop the table name already copied (and the whitespace after it).
            let name_start = name_start(&out);
            out.truncate(name_start);
            out.extend(replacement);
            i = next;
            continue;
        }
        out.push(tokens[i].clone());
        i += 1;
    }
    out
}

/// Where the table name copied last into `out` begins (`a`, or `a . b`).
fn name_start(out: &[TokenWithSpan]) -> usize {
    let mut end = out.len();
    while end > 0 && is_space(&out[end - 1].token) {
        end -= 1;
    }
    let mut start = end.saturating_sub(1);
    if start >= 2
        && out[start - 1].token == Token::Period
        && matches!(out[start - 2].token, Token::Word(_))
    {
        start -= 2;
    }
    start
}

/// If `tokens[i]` starts `AT ( KIND => value )` right after a table name,
/// returns the tokens replacing name + clause, and where scanning resumes.
fn match_at(tokens: &[TokenWithSpan], i: usize) -> Option<(Vec<TokenWithSpan>, usize)> {
    if !word_is(&tokens[i].token, "AT") {
        return None;
    }
    // The table name before AT: `name` or `db . name`.
    let mut j = i;
    while j > 0 && is_space(&tokens[j - 1].token) {
        j -= 1;
    }
    if j == 0 {
        return None;
    }
    let name = ident_text(&tokens[j - 1].token)?;
    if matches!(&tokens[j - 1].token, Token::Word(w) if w.keyword != Keyword::NoKeyword && w.quote_style.is_none() && !matches!(w.keyword, Keyword::TABLE))
        && reserved_before_at(&tokens[j - 1].token)
    {
        return None;
    }
    let db = if j >= 3 && tokens[j - 2].token == Token::Period {
        ident_text(&tokens[j - 3].token)
    } else {
        None
    };
    let open = skip(tokens, i + 1);
    if tokens.get(open)?.token != Token::LParen {
        return None;
    }
    let kind_at = skip(tokens, open + 1);
    let kind = match &tokens.get(kind_at)?.token {
        t if word_is(t, "SNAPSHOT") => "snapshot",
        t if word_is(t, "TIMESTAMP") => "timestamp",
        _ => return None,
    };
    let arrow = skip(tokens, kind_at + 1);
    if tokens.get(arrow)?.token != Token::RArrow {
        return None;
    }
    // The value runs to the matching closing parenthesis.
    let mut depth = 0;
    let mut end = arrow + 1;
    while end < tokens.len() {
        match tokens[end].token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => break,
            Token::RParen => depth -= 1,
            _ => {}
        }
        end += 1;
    }
    if end >= tokens.len() {
        return None;
    }
    let value: Vec<TokenWithSpan> = tokens[arrow + 1..end].to_vec();
    let mut replacement = vec![
        plain(Token::make_word(TIME_TRAVEL_FUNCTION, None)),
        plain(Token::LParen),
        plain(Token::SingleQuotedString(db.unwrap_or_default())),
        plain(Token::Comma),
        plain(Token::SingleQuotedString(name.clone())),
        plain(Token::Comma),
        plain(Token::SingleQuotedString(kind.to_string())),
        plain(Token::Comma),
    ];
    replacement.extend(value);
    replacement.push(plain(Token::RParen));
    // Keep the table's name as its alias unless the query gives one.
    let after = skip(tokens, end + 1);
    let has_alias = match tokens.get(after).map(|t| &t.token) {
        Some(Token::Word(w)) => {
            w.keyword == Keyword::AS || w.keyword == Keyword::NoKeyword || w.quote_style.is_some()
        }
        _ => false,
    };
    if !has_alias {
        replacement.push(plain(Token::Whitespace(
            sqlparser::tokenizer::Whitespace::Space,
        )));
        replacement.push(plain(Token::make_word(&name, Some('"'))));
    }
    Some((replacement, end + 1))
}

/// Keywords after which `AT` cannot follow a table name.
fn reserved_before_at(t: &Token) -> bool {
    matches!(t, Token::Word(w) if matches!(w.keyword, Keyword::SELECT | Keyword::FROM | Keyword::WHERE | Keyword::AND | Keyword::OR | Keyword::ON | Keyword::JOIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::tokenizer::Tokenizer;

    fn rewritten(sql: &str) -> String {
        let tokens = Tokenizer::new(&PostgreSqlDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        rewrite(tokens)
            .iter()
            .map(|t| t.token.to_string())
            .collect()
    }

    #[test]
    fn at_clauses_become_time_travel_calls() {
        assert_eq!(
            rewritten("SELECT * FROM t AT (SNAPSHOT => 'abc') WHERE a = 1"),
            "SELECT * FROM fuse_time_travel('','t','snapshot', 'abc') \"t\" WHERE a = 1"
        );
        assert_eq!(
            rewritten("select count(*) from db.T at (timestamp => now() - interval '1 hour') x"),
            "select count(*) from fuse_time_travel('db','t','timestamp', now() - interval '1 hour') x"
        );
        assert_eq!(rewritten("SELECT at FROM t"), "SELECT at FROM t");
        assert_eq!(
            rewritten("SELECT 1 AT TIME ZONE 'UTC'"),
            "SELECT 1 AT TIME ZONE 'UTC'"
        );
    }
}
