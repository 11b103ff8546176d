//! The expression language's syntax: a lexer and a precedence-climbing parser into [`Expr`]
//! trees that remember the column each node starts at, so every later error can point at it.
//!
//! Precedence, loosest first: `or`, `and`, `not`, comparisons (`< <= > >= == !=`, not chained),
//! `+ -`, `* /`, unary minus, then postfix lookback `x[k]` and context `x@SYMBOL`, `x@1d`.

/// A binary operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `and`
    And,
    /// `or`
    Or,
}

/// A parsed expression and the 1-based column where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: Kind,
    /// Column of its first character.
    pub col: usize,
}

/// The node kinds.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// A number literal.
    Num(f64),
    /// `true` or `false`.
    Bool(bool),
    /// A bar field, position term or parameter.
    Name(String),
    /// A function or indicator call.
    Call(String, Vec<Expr>),
    /// Unary minus.
    Neg(Box<Expr>),
    /// `not`.
    Not(Box<Expr>),
    /// A binary operation.
    Bin(BinOp, Box<Expr>, Box<Expr>),
    /// `x[k]`: x, k bars ago.
    Ago(Box<Expr>, Box<Expr>),
    /// `x@CONTEXT`: x computed on another symbol's bars, or on coarser bars (the context as
    /// written, and its column).
    At(Box<Expr>, String, usize),
}

/// A syntax error: 1-based column and what was expected.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// Column.
    pub col: usize,
    /// What went wrong.
    pub msg: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Sym(&'static str),
    /// `@` and the context after it.
    At(String),
    End,
}

fn lex(src: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            // An exponent: 1e-3, 2.5E4.
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let v = text.parse::<f64>().map_err(|_| ParseError { col, msg: format!("'{text}' is not a number") })?;
            if i < chars.len() && (chars[i].is_alphabetic() || chars[i] == '_') {
                return Err(ParseError { col, msg: format!("'{text}{}' is not a number or a name", chars[i]) });
            }
            out.push((Tok::Num(v), col));
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push((Tok::Ident(chars[start..i].iter().collect()), col));
            continue;
        }
        if c == '@' {
            i += 1;
            let start = i;
            let text = if chars.get(i) == Some(&'"') {
                // A quoted symbol, for names with characters the language uses (`@"ETH-USD"`).
                let close =
                    chars[i + 1..].iter().position(|&c| c == '"').ok_or(ParseError { col, msg: "unclosed '\"' after '@'".into() })?;
                i += close + 2;
                chars[start + 1..i - 1].iter().collect::<String>()
            } else {
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                    i += 1;
                }
                chars[start..i].iter().collect()
            };
            if text.is_empty() {
                return Err(ParseError { col, msg: "expected a symbol or a timeframe after '@' (e.g. close@ETHUSDT, sma(20)@1d)".into() });
            }
            out.push((Tok::At(text), col));
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym = match two.as_str() {
            "<=" => Some("<="),
            ">=" => Some(">="),
            "==" => Some("=="),
            "!=" => Some("!="),
            _ => None,
        };
        if let Some(s) = sym {
            out.push((Tok::Sym(s), col));
            i += 2;
            continue;
        }
        let one = match c {
            '<' => "<",
            '>' => ">",
            '+' => "+",
            '-' => "-",
            '*' => "*",
            '/' => "/",
            '(' => "(",
            ')' => ")",
            '[' => "[",
            ']' => "]",
            ',' => ",",
            '=' => return Err(ParseError { col, msg: "'=' is not an operator: compare with '=='".into() }),
            '&' | '|' | '!' => {
                return Err(ParseError { col, msg: format!("'{c}' is not an operator: write and, or, not") });
            }
            _ => return Err(ParseError { col, msg: format!("unexpected character '{c}'") }),
        };
        out.push((Tok::Sym(one), col));
        i += 1;
    }
    out.push((Tok::End, chars.len() + 1));
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    /// Nesting depth, bounded so a pathological expression is an error, not a stack overflow.
    depth: usize,
}

/// Deepest nesting of parentheses, calls, `not` and unary minus accepted.
const MAX_DEPTH: usize = 200;

/// Parse one expression.
pub fn parse(src: &str) -> Result<Expr, ParseError> {
    let mut p = Parser { toks: lex(src)?, pos: 0, depth: 0 };
    if p.peek() == &Tok::End {
        return Err(ParseError { col: 1, msg: "empty expression".into() });
    }
    let e = p.or()?;
    match p.peek() {
        Tok::End => Ok(e),
        t => Err(ParseError { col: p.col(), msg: format!("unexpected {} after a complete expression", describe(t)) }),
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Num(v) => format!("number {v}"),
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Sym(s) => format!("'{s}'"),
        Tok::At(s) => format!("'@{s}'"),
        Tok::End => "end of expression".into(),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        &self.toks[self.pos].0
    }
    fn col(&self) -> usize {
        self.toks[self.pos].1
    }
    fn bump(&mut self) -> (Tok, usize) {
        let t = self.toks[self.pos].clone();
        if self.pos + 1 < self.toks.len() {
            self.pos += 1;
        }
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == w)
    }
    fn expect(&mut self, sym: &'static str, what: &str) -> Result<(), ParseError> {
        if self.peek() == &Tok::Sym(sym) {
            self.bump();
            Ok(())
        } else {
            Err(ParseError { col: self.col(), msg: format!("expected '{sym}' {what}, found {}", describe(self.peek())) })
        }
    }

    /// Enter one more level of nesting (left again by [`Parser::leave`]).
    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(ParseError { col: self.col(), msg: format!("nested more than {MAX_DEPTH} levels deep") });
        }
        Ok(())
    }
    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let e = self.or_inner();
        self.leave();
        e
    }

    fn or_inner(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.and()?;
        while self.is_word("or") {
            self.bump();
            let r = self.and()?;
            l = Expr { col: l.col, kind: Kind::Bin(BinOp::Or, Box::new(l), Box::new(r)) };
        }
        Ok(l)
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.not()?;
        while self.is_word("and") {
            self.bump();
            let r = self.not()?;
            l = Expr { col: l.col, kind: Kind::Bin(BinOp::And, Box::new(l), Box::new(r)) };
        }
        Ok(l)
    }

    fn not(&mut self) -> Result<Expr, ParseError> {
        if self.is_word("not") {
            let col = self.bump().1;
            self.enter()?;
            let e = self.not();
            self.leave();
            return Ok(Expr { col, kind: Kind::Not(Box::new(e?)) });
        }
        self.cmp()
    }

    fn cmp(&mut self) -> Result<Expr, ParseError> {
        let l = self.add()?;
        let op = match self.peek() {
            Tok::Sym("<") => BinOp::Lt,
            Tok::Sym("<=") => BinOp::Le,
            Tok::Sym(">") => BinOp::Gt,
            Tok::Sym(">=") => BinOp::Ge,
            Tok::Sym("==") => BinOp::Eq,
            Tok::Sym("!=") => BinOp::Ne,
            _ => return Ok(l),
        };
        self.bump();
        let r = self.add()?;
        if matches!(self.peek(), Tok::Sym("<" | "<=" | ">" | ">=" | "==" | "!=")) {
            return Err(ParseError { col: self.col(), msg: "comparisons do not chain: write a < b and b < c".into() });
        }
        Ok(Expr { col: l.col, kind: Kind::Bin(op, Box::new(l), Box::new(r)) })
    }

    fn add(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.mul()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("+") => BinOp::Add,
                Tok::Sym("-") => BinOp::Sub,
                _ => return Ok(l),
            };
            self.bump();
            let r = self.mul()?;
            l = Expr { col: l.col, kind: Kind::Bin(op, Box::new(l), Box::new(r)) };
        }
    }

    fn mul(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.unary()?;
        loop {
            let op = match self.peek() {
                Tok::Sym("*") => BinOp::Mul,
                Tok::Sym("/") => BinOp::Div,
                _ => return Ok(l),
            };
            self.bump();
            let r = self.unary()?;
            l = Expr { col: l.col, kind: Kind::Bin(op, Box::new(l), Box::new(r)) };
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        if self.peek() == &Tok::Sym("-") {
            let col = self.bump().1;
            self.enter()?;
            let e = self.unary();
            self.leave();
            return Ok(Expr { col, kind: Kind::Neg(Box::new(e?)) });
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Expr, ParseError> {
        let mut e = self.primary()?;
        loop {
            match self.peek().clone() {
                Tok::Sym("[") => {
                    self.bump();
                    let k = self.or()?;
                    self.expect("]", "to close the lookback")?;
                    e = Expr { col: e.col, kind: Kind::Ago(Box::new(e), Box::new(k)) };
                }
                Tok::At(ctx) => {
                    let col = self.bump().1;
                    e = Expr { col: e.col, kind: Kind::At(Box::new(e), ctx, col) };
                }
                _ => return Ok(e),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        let (tok, col) = self.bump();
        match tok {
            Tok::Num(v) => Ok(Expr { col, kind: Kind::Num(v) }),
            Tok::Ident(w) if w == "true" || w == "false" => Ok(Expr { col, kind: Kind::Bool(w == "true") }),
            Tok::Ident(w) if w == "and" || w == "or" => Err(ParseError { col, msg: format!("expected a value before '{w}'") }),
            Tok::Ident(w) => {
                if self.peek() != &Tok::Sym("(") {
                    return Ok(Expr { col, kind: Kind::Name(w) });
                }
                self.bump();
                let mut args = Vec::new();
                if self.peek() != &Tok::Sym(")") {
                    loop {
                        args.push(self.or()?);
                        if self.peek() == &Tok::Sym(",") {
                            self.bump();
                            continue;
                        }
                        break;
                    }
                }
                self.expect(")", &format!("to close the arguments of {w}("))?;
                Ok(Expr { col, kind: Kind::Call(w, args) })
            }
            Tok::Sym("(") => {
                let e = self.or()?;
                self.expect(")", "to close '('")?;
                Ok(e)
            }
            t => Err(ParseError { col, msg: format!("expected a value (a number, a name or '('), found {}", describe(&t)) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fully bracketed rendering, to check precedence.
    fn show(e: &Expr) -> String {
        match &e.kind {
            Kind::Num(v) => format!("{v}"),
            Kind::Bool(b) => format!("{b}"),
            Kind::Name(n) => n.clone(),
            Kind::Call(f, a) => format!("{f}({})", a.iter().map(show).collect::<Vec<_>>().join(", ")),
            Kind::Neg(x) => format!("(-{})", show(x)),
            Kind::Not(x) => format!("(not {})", show(x)),
            Kind::Bin(op, a, b) => format!("({} {op:?} {})", show(a), show(b)),
            Kind::Ago(x, k) => format!("{}[{}]", show(x), show(k)),
            Kind::At(x, c, _) => format!("{}@{c}", show(x)),
        }
    }

    #[test]
    fn precedence_and_postfix() {
        let e = parse("rsi(14) < lo and close > sma(200) or not x").unwrap();
        assert_eq!(show(&e), "(((rsi(14) Lt lo) And (close Gt sma(200))) Or (not x))");
        let e = parse("-a + b * c[3] / 2 >= 1e-3").unwrap();
        assert_eq!(show(&e), "(((-a) Add ((b Mul c[3]) Div 2)) Ge 0.001)");
        let e = parse("sma(20)@1d > close@ETHUSDT and close@\"ETH-USD\"[1] != 0").unwrap();
        assert_eq!(show(&e), "((sma(20)@1d Gt close@ETHUSDT) And (close@ETH-USD[1] Ne 0))");
        assert_eq!(parse("crosses_above(rsi(14), hi)").unwrap().col, 1);
    }

    #[test]
    fn any_text_parses_or_errors_without_panicking() {
        // 20,000 strings of up to 24 characters from the language's own alphabet and a few
        // strangers: every one must come back as a tree or as an error inside the text.
        let alphabet: Vec<char> = "abcrsilo_0123456789.e+-*/<>=!()[],@\" \tandornotéx".chars().collect();
        let mut x = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..20_000 {
            let len = (next() % 25) as usize;
            let text: String = (0..len).map(|_| alphabet[(next() % alphabet.len() as u64) as usize]).collect();
            if let Err(e) = parse(&text) {
                assert!(e.col >= 1 && e.col <= text.chars().count() + 1, "{text:?}: {e:?}");
            }
        }
    }

    #[test]
    fn errors_point_at_the_column() {
        let err = |s: &str| parse(s).unwrap_err();
        assert_eq!(err("rsi(14) < ").col, 11);
        assert_eq!(err("close = 3").col, 7);
        assert!(err("close = 3").msg.contains("=="));
        assert_eq!(err("a && b").col, 3);
        assert_eq!(err("(a < b").col, 7);
        assert_eq!(err("a < b < c").col, 7);
        assert_eq!(err("sma(20").col, 7);
        assert_eq!(err("close@").col, 6);
        assert_eq!(err("3x").col, 1);
        assert_eq!(err("a b").col, 3);
        assert_eq!(err("").col, 1);
        // Pathological nesting is an error, not a stack overflow.
        assert!(err(&format!("{}close{}", "(".repeat(5000), ")".repeat(5000))).msg.contains("nested"));
        assert!(err(&format!("{}close", "-".repeat(5000))).msg.contains("nested"));
        assert!(err(&format!("{}true", "not ".repeat(5000))).msg.contains("nested"));
        assert!(parse(&format!("{}close{} > 0", "(".repeat(100), ")".repeat(100))).is_ok());
    }
}
