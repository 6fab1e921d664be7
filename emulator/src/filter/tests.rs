//! The filter language end to end: which filters parse, and what they
//! match.

use super::fixtures::{error, parse, ALL};
use super::ODataFilter;

#[rustfmt::skip]
const INVALID: &[&str] = &[
    "", "   ", "\t\n", "'abc", "userId eq 'abc", "userId eq 'it''s", "foo(userId)",
    "TOLOWER(userId) eq 'a'", "protocol eq 'json'", "bogus eq 'a'", "length eq 1",
    "length(userId, 'a') eq 1", "substring(userId) eq 'a'", "substring(userId, 1, 2, 3) eq 'a'",
    "startswith(userId)", "length() eq 0", "concat(userId) eq 'a'", "userId eq 'a' garbage",
    "userId eq 'a')", "true true", "userId(1)", "userId eq 1", "length(userId) eq 'a'",
    "groups eq 'a'", "groups eq groups", "'a' in (1, 2)", "1 in groups", "true in groups",
    "groups in ('a')", "true gt false", "userId gt true", "userId", "length(userId)", "null",
    "groups", "1", "'text'", "()", "userId in ()", "userId in ('a',)", "userId in ('a'",
    "userId in ('a' 'b')", "userId in (userId)", "userId in 'a'", "'a' in userId",
    "'a' in (('a'))", "length(userId) gt ()", "not length(userId) gt 5", "not userId",
    "not 'g1' in groups", "userId and true", "true or 1", "userId EQ 'u1'",
    "userId eq 'u1' AND true", "True", "NOT true", "99999999999999999999 eq 1",
    "-99999999999999999999 eq 1", "-", "+ 1 eq 1", "1.5 eq 1", "userId eq \"u1\"",
    "userId eq 'a' or", "and", "or true", "(true", "true)", "tolower(1) eq 'a'",
    "substring(userId, '1') eq 'a'", "substring(userId, null) eq 'a'", "userId eq eq 'a'",
    "'a' eq 'a' eq true", "userId eq 'a' $", "userId eq 'é' é", "length(,) eq 0",
    "startswith(userId, 'a',)", "not", "not not", "in groups", "$filter=true",
];

#[test]
fn invalid_filters() {
    for filter in INVALID {
        let refused = error(filter);
        assert!(!refused.reason.is_empty(), "{filter}");
        assert!(
            refused.to_string().starts_with("Invalid syntax for '"),
            "{refused}"
        );
        assert!(
            refused.to_string().ends_with(" (Parameter 'filter')"),
            "{refused}"
        );
    }
}

/// xorshift64*, deterministic.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let value = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33;
        usize::try_from(value).unwrap_or(0) % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items.get(self.below(items.len())).copied().unwrap_or("")
    }
}

fn gen_bool(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return rng
            .pick(&[
                "true",
                "false",
                "'g1' in groups",
                "userId eq null",
                "connectionId ne 'c1'",
            ])
            .to_owned();
    }
    let d = depth - 1;
    match rng.below(10) {
        0 => format!("{} and {}", gen_bool(rng, d), gen_bool(rng, d)),
        1 => format!("{} or {}", gen_bool(rng, d), gen_bool(rng, d)),
        2 => format!("not ({})", gen_bool(rng, d)),
        3 => format!(
            "{} {} {}",
            gen_str(rng, d),
            rng.pick(&["eq", "ne", "gt", "ge", "lt", "le"]),
            gen_str(rng, d)
        ),
        4 => format!(
            "{} {} {}",
            gen_int(rng, d),
            rng.pick(&["eq", "ne", "gt", "ge", "lt", "le"]),
            gen_int(rng, d)
        ),
        5 => format!(
            "{}({}, {})",
            rng.pick(&["startswith", "endswith", "contains"]),
            gen_str(rng, d),
            gen_str(rng, d)
        ),
        6 => format!("{} in groups", gen_str(rng, d)),
        7 => format!("{} in ('u1', null, 'g2')", gen_str(rng, d)),
        8 => format!("({}) eq ({})", gen_bool(rng, d), gen_bool(rng, d)),
        _ => format!("({})", gen_bool(rng, d)),
    }
}

fn gen_str(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return rng
            .pick(&[
                "userId",
                "connectionId",
                "'u1'",
                "'g1'",
                "''",
                "null",
                "'é''😀'",
            ])
            .to_owned();
    }
    let d = depth - 1;
    match rng.below(6) {
        0 => format!(
            "{}({})",
            rng.pick(&["tolower", "toupper", "trim"]),
            gen_str(rng, d)
        ),
        1 => format!("substring({}, {})", gen_str(rng, d), gen_int(rng, d)),
        2 => format!(
            "substring({}, {}, {})",
            gen_str(rng, d),
            gen_int(rng, d),
            gen_int(rng, d)
        ),
        3 => format!("concat({}, {})", gen_str(rng, d), gen_str(rng, d)),
        _ => gen_str(rng, 0),
    }
}

fn gen_int(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 {
        return rng
            .pick(&[
                "0",
                "1",
                "-1",
                "+7",
                "9223372036854775807",
                "-9223372036854775808",
            ])
            .to_owned();
    }
    let d = depth - 1;
    match rng.below(4) {
        0 => format!("length({})", gen_str(rng, d)),
        1 => format!("indexof({}, {})", gen_str(rng, d), gen_str(rng, d)),
        2 => "length(groups)".to_owned(),
        _ => gen_int(rng, 0),
    }
}

#[test]
fn generated_valid_filters_parse_and_evaluate() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..3_000 {
        let filter = gen_bool(&mut rng, 5);
        let parsed = parse(&filter);
        let negated = parse(&format!("not ({filter})"));
        let tautology = parse(&format!("({filter}) or not ({filter})"));
        for conn in ALL {
            assert_ne!(parsed.matches(conn), negated.matches(conn), "{filter}");
            assert!(tautology.matches(conn), "{filter}");
        }
    }
}

#[rustfmt::skip]
const FRAGMENTS: &[&str] = &[
    "userId", "connectionId", "groups", "protocol", "'a'", "'b''c'", "'", "''", "(", ")", ",",
    "eq", "ne", "gt", "ge", "lt", "le", "and", "or", "not", "in", "true", "false", "null", "0",
    "-1", "+5", "99999999999999999999", "-", "tolower", "toupper", "trim", "substring",
    "concat", "startswith", "endswith", "contains", "indexof", "length", "é", "😀", "$", " ",
    "'ü'", "USERID", "\u{0}", "\u{301}", "1.5",
];

fn try_all(filter: &str) {
    if let Ok(parsed) = ODataFilter::parse(filter) {
        for conn in ALL {
            let _ = parsed.matches(conn);
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng(42);
    for _ in 0..20_000 {
        let mut filter = String::new();
        for _ in 0..rng.below(24) {
            filter.push_str(rng.pick(FRAGMENTS));
            if rng.below(3) != 0 {
                filter.push(' ');
            }
        }
        try_all(&filter);
    }
}

proptest::proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,64}") {
        try_all(&text);
    }

    #[test]
    fn arbitrary_fragments_never_panic(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 0..32)) {
        try_all(&parts.join(" "));
        try_all(&parts.concat());
    }
}
