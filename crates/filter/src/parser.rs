//! Recursive-descent parser: tokens to an [`Expr`] tree (the types are in
//! [`super::ast`]).
//!
//! `and`/`or` chains are parsed with loops into n-ary nodes, so recursion
//! depth grows only with parentheses and `not`, which are bounded by
//! [`MAX_DEPTH`](super::bounds::MAX_DEPTH): deep input gives an error, never a stack overflow.

use super::ast::{Cmp, CmpOp, Expr, FieldRef, Lit, Rhs, Span};
use super::bounds::{MAX_DEPTH, MAX_SOURCE};
use super::error::{ErrorKind, FilterError};
use super::lexer::{lex, Tok, Token};

/// Parses `src` into an expression tree.
pub(super) fn parse(src: &str) -> Result<Expr, FilterError> {
    if src.len() > MAX_SOURCE {
        return Err(FilterError::new(src, MAX_SOURCE, ErrorKind::TooLong));
    }
    let tokens = lex(src)?;
    let mut p = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
    };
    let expr = p.or_expr()?;
    if p.peek().tok != Tok::Eof {
        return Err(p.expected("`and`, `or` or the end of the filter"));
    }
    Ok(expr)
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl<'s> Parser<'s> {
    fn peek(&self) -> &Token {
        // The last token is always Eof and is never consumed.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek2(&self) -> &Token {
        &self.tokens[(self.pos + 1).min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn text(&self, t: &Token) -> &'s str {
        &self.src[t.start..t.end]
    }

    fn is_word(&self, t: &Token, word: &str) -> bool {
        t.tok == Tok::Ident && self.text(t) == word
    }

    fn describe(&self, t: &Token) -> String {
        match &t.tok {
            Tok::Eof => "the end of the filter".to_owned(),
            Tok::Str(s) => format!("the string {s:?}"),
            Tok::Int(_) | Tok::Float(_) => format!("the number {}", self.text(t)),
            _ => format!("`{}`", self.text(t)),
        }
    }

    fn expected(&self, what: &str) -> FilterError {
        let t = self.peek();
        FilterError::new(
            self.src,
            t.start,
            ErrorKind::Expected {
                expected: what.to_owned(),
                found: self.describe(t),
            },
        )
    }

    fn enter(&mut self) -> Result<(), FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(
                self.src,
                self.peek().start,
                ErrorKind::TooDeep,
            ));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.and_expr()?];
        while self.is_word(self.peek(), "or") || self.peek().tok == Tok::OrOr {
            self.bump();
            terms.push(self.and_expr()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Expr::Bool(false))
        } else {
            Expr::Or(terms)
        })
    }

    fn and_expr(&mut self) -> Result<Expr, FilterError> {
        let mut terms = vec![self.unary()?];
        while self.is_word(self.peek(), "and") || self.peek().tok == Tok::AndAnd {
            self.bump();
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().unwrap_or(Expr::Bool(true))
        } else {
            Expr::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.is_word(self.peek(), "not") || self.peek().tok == Tok::Bang {
            self.enter()?;
            self.bump();
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, FilterError> {
        let t = self.peek().clone();
        match t.tok {
            Tok::LParen => {
                self.enter()?;
                self.bump();
                let inner = self.or_expr()?;
                if self.peek().tok != Tok::RParen {
                    return Err(self.expected("`)`, `and` or `or`"));
                }
                self.bump();
                self.depth -= 1;
                Ok(inner)
            }
            Tok::Ident if self.text(&t) == "true" => {
                self.bump();
                Ok(Expr::Bool(true))
            }
            Tok::Ident if self.text(&t) == "false" => {
                self.bump();
                Ok(Expr::Bool(false))
            }
            Tok::Ident => self.comparison(),
            _ => Err(self.expected("a field name, `not`, `(`, `true` or `false`")),
        }
    }

    fn field(&mut self) -> Result<(FieldRef, Span), FilterError> {
        let t = self.bump();
        let name = self.text(&t);
        if name != "field" {
            return match FieldRef::from_name(name) {
                Some(f) => Ok((
                    f,
                    Span {
                        start: t.start,
                        end: t.end,
                    },
                )),
                None => Err(FilterError::new(
                    self.src,
                    t.start,
                    ErrorKind::UnknownField(name.to_owned()),
                )),
            };
        }
        let mut custom = String::new();
        let mut end = t.end;
        for part_no in 0.. {
            if self.peek().tok != Tok::Dot {
                if part_no == 0 {
                    return Err(self.expected("`.` and a field name after `field`"));
                }
                break;
            }
            self.bump();
            let part = self.peek().clone();
            match &part.tok {
                Tok::Ident => custom.push_str(self.text(&part)),
                Tok::Str(s) => custom.push_str(s),
                Tok::Int(_) => custom.push_str(self.text(&part)),
                _ => return Err(self.expected("a field name (a word or a quoted string)")),
            }
            self.bump();
            end = part.end;
            if self.peek().tok == Tok::Dot {
                custom.push('.');
            }
        }
        Ok((
            FieldRef::Custom(custom),
            Span {
                start: t.start,
                end,
            },
        ))
    }

    fn word_op(word: &str) -> Option<CmpOp> {
        Some(match word {
            "contains" => CmpOp::Contains,
            "starts_with" => CmpOp::StartsWith,
            "ends_with" => CmpOp::EndsWith,
            "in" => CmpOp::In,
            "under" => CmpOp::Under,
            _ => return None,
        })
    }

    fn comparison(&mut self) -> Result<Expr, FilterError> {
        let (field, field_span) = self.field()?;
        let t = self.peek().clone();
        let mut negated = false;
        let op = match t.tok {
            Tok::Eq => CmpOp::Eq,
            Tok::Ne => CmpOp::Ne,
            Tok::Lt => CmpOp::Lt,
            Tok::Le => CmpOp::Le,
            Tok::Gt => CmpOp::Gt,
            Tok::Ge => CmpOp::Ge,
            Tok::Ident => {
                let word = self.text(&t);
                let next = self.peek2();
                if let Some(op) = Self::word_op(word) {
                    op
                } else if word == "not" && next.tok == Tok::Ident {
                    match Self::word_op(self.text(next)) {
                        Some(op) => {
                            negated = true;
                            self.bump();
                            op
                        }
                        None => return Err(self.op_expected(&field)),
                    }
                } else {
                    return Err(self.op_expected(&field));
                }
            }
            _ => return Err(self.op_expected(&field)),
        };
        let op_tok = self.bump();
        let op_span = Span {
            start: if negated { t.start } else { op_tok.start },
            end: op_tok.end,
        };
        let rhs = if op == CmpOp::In {
            self.list()?
        } else {
            let (lit, span) = self.value(op)?;
            Rhs::One(lit, span)
        };
        Ok(Expr::Cmp(Box::new(Cmp {
            field,
            field_span,
            op,
            op_span,
            negated,
            rhs,
        })))
    }

    fn op_expected(&self, field: &FieldRef) -> FilterError {
        self.expected(&format!(
            "an operator after `{}` (==, !=, <, <=, >, >=, contains, starts_with, \
             ends_with, in, under)",
            field.name()
        ))
    }

    fn value(&mut self, after: CmpOp) -> Result<(Lit, Span), FilterError> {
        let t = self.peek().clone();
        let lit = match &t.tok {
            Tok::Str(s) => Lit::Str(s.clone()),
            Tok::Int(n) => Lit::Int(*n),
            Tok::Float(x) => Lit::Float(*x),
            Tok::Ident => match self.text(&t) {
                "true" => Lit::Bool(true),
                "false" => Lit::Bool(false),
                "null" => Lit::Null,
                name => Lit::Name(name.to_owned()),
            },
            _ => {
                return Err(self.expected(&format!(
                    "a value after `{}` (a string, a number or a name)",
                    after.as_str()
                )))
            }
        };
        self.bump();
        Ok((
            lit,
            Span {
                start: t.start,
                end: t.end,
            },
        ))
    }

    fn list(&mut self) -> Result<Rhs, FilterError> {
        if self.peek().tok != Tok::LBracket {
            return Err(self.expected("`[` to start the list after `in`"));
        }
        self.bump();
        let mut items = Vec::new();
        loop {
            if self.peek().tok == Tok::RBracket {
                self.bump();
                break;
            }
            items.push(self.value(CmpOp::In)?);
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RBracket => {}
                _ => return Err(self.expected("`,` or `]`")),
            }
        }
        Ok(Rhs::List(items))
    }
}
