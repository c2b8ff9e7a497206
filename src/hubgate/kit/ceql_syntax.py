"""CEQL syntax: the AST, a hand-written tokenizer and recursive-descent parser, and rendering.

Grammar (keywords are case-insensitive; whitespace is optional wherever tokens stay
distinguishable, so ``to='+1555'`` and ``DateSent>='2026-01-01'`` are fine)::

    where      := or EOF
    or         := and ( OR and )*
    and        := not ( AND not )*
    not        := NOT not | primary
    primary    := '(' or ')' | predicate
    predicate  := field compare_op value
                | field [ NOT ] LIKE string
                | field [ NOT ] IN '(' value ( ',' value )* ')'
                | field IS [ NOT ] NULL
    compare_op := '=' | '!=' | '<>' | '<' | '>' | '<=' | '>='
    value      := string | number | TRUE | FALSE
    field      := identifier | '`' any character but '`' ... '`' | string

    order_by   := [ order_key ( ',' order_key )* ] EOF
    order_key  := field [ ASC | DESC ]
    fields     := [ field ( ',' field )* ] EOF

Lexical rules:

* ``string``: single-quoted, ``''`` stands for one quote; there are no backslash escapes.
* ``number``: ``-?[0-9]+(\\.[0-9]+)?``. Integers become ``int``, anything with a fraction becomes
  ``decimal.Decimal`` (exact, so a literal always renders back to the same number).
* ``identifier``: ASCII letters, digits, ``_`` and ``.``, starting with a letter or ``_``, with no
  empty dot-separated segment, and not a keyword (AND OR NOT LIKE IN IS NULL TRUE FALSE).
  Anything else (keywords, spaces, non-ASCII, ``-``) must be backticked.
* A single-quoted string in field position is accepted as a field name too, because element docs
  write ``'Modified Time'>'...'``; it renders back with backticks.

Precedence is NOT > AND > OR. Parentheses create no node, so ``(a = 1 AND b = 2) AND c = 3``
keeps its nested ``And`` while ``a = 1 AND b = 2 AND c = 3`` is one flat ``And``; ``to_ceql``
parenthesizes every nested AND/OR so that ``parse(to_ceql(e)) == e`` for every valid AST.

Errors are ``CeqlSyntaxError`` (a ``ValueError``) with the 0-based character ``position``; no
other exception escapes the parsers for any input string. Input length and nesting depth are
capped so that hostile input costs bounded time and stack.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, TypeAlias

__all__ = [
    "COMPARISON_OPS",
    "KEYWORDS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "CeqlSyntaxError",
    "Comparison",
    "Expr",
    "In",
    "IsNull",
    "Like",
    "Not",
    "Or",
    "OrderKey",
    "Value",
    "is_plain_identifier",
    "parse",
    "parse_fields",
    "parse_order_by",
    "render_field",
    "render_value",
    "to_ceql",
]

# Literal values of the language. ``bool`` is listed although it is an ``int`` subclass because
# the code always tests for it first: ``true`` must never behave like ``1``.
Value: TypeAlias = str | bool | int | Decimal

COMPARISON_OPS: Final = frozenset({"=", "!=", "<", ">", "<=", ">="})
KEYWORDS: Final = frozenset({"AND", "OR", "NOT", "LIKE", "IN", "IS", "NULL", "TRUE", "FALSE"})

# Longer input than this is rejected before tokenizing: a where clause is a URL parameter, and
# the cap bounds the work any one request can ask of the parser and of every evaluation.
MAX_LENGTH: Final = 10_000
# Parentheses and NOTs nest by recursion (in the parser, evaluator and renderer); the cap keeps
# all of them far from Python's recursion limit, whatever stack the caller already uses.
MAX_DEPTH: Final = 100
# ``int()`` refuses more than 4300 digits; a cap well below that turns it into a syntax error.
_MAX_NUMBER_LENGTH: Final = 1000

_OP_CHARS: Final = frozenset("=!<>")
_LEX_OPS: Final = frozenset({"=", "!=", "<>", "<", ">", "<=", ">="})
_WORD_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")
_IDENT_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS: Final = frozenset("0123456789")


class CeqlSyntaxError(ValueError):
    """A where/orderBy/fields text that does not follow the grammar.

    ``position`` is the 0-based character index of the offending token (the text length when
    input ended too early); ``reason`` is the message without the position prefix.
    """

    def __init__(self, reason: str, position: int, what: str = "where clause") -> None:
        super().__init__(f"Invalid {what} at position {position}: {reason}")
        self.reason = reason
        self.position = position
        self.what = what

    def __reduce__(self) -> tuple[type[CeqlSyntaxError], tuple[str, int, str]]:
        # The default reduce would call __init__ with the formatted message only.
        return (type(self), (self.reason, self.position, self.what))


# ---------------------------------------------------------------------------------------------
# AST. Constructors validate, so any AST that exists can be rendered and parses back equal.


def _check_field(field: object) -> None:
    if not isinstance(field, str) or not field:
        raise ValueError("a CEQL field name must be a non-empty string")
    if "`" in field:
        # There is no escape for a backtick inside a backticked name, so it could not render.
        raise ValueError(f"a CEQL field name cannot contain a backtick: {field!r}")


def _check_value(value: object) -> None:
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"a CEQL number must be finite, not {value}")
    elif not isinstance(value, str | int):  # bool is an int
        raise TypeError(f"a CEQL value is str, int, Decimal or bool, not {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Comparison:
    """``field op value``; ``op`` is one of ``= != < > <= >=`` (``<>`` parses as ``!=``)."""

    field: str
    op: str
    value: Value

    def __post_init__(self) -> None:
        _check_field(self.field)
        if self.op not in COMPARISON_OPS:
            raise ValueError(f"unknown CEQL comparison operator {self.op!r}")
        _check_value(self.value)


@dataclass(frozen=True, slots=True)
class Like:
    """``field [NOT] LIKE 'pattern'``: ``%`` any run, ``_`` one character, case-insensitive."""

    field: str
    pattern: str
    negated: bool = False

    def __post_init__(self) -> None:
        _check_field(self.field)
        if not isinstance(self.pattern, str):
            raise TypeError("a LIKE pattern must be a string")


@dataclass(frozen=True, slots=True)
class In:
    """``field [NOT] IN (v1, v2, ...)`` with at least one value."""

    field: str
    values: tuple[Value, ...]
    negated: bool = False

    def __post_init__(self) -> None:
        _check_field(self.field)
        # Accept any iterable for convenience but store a tuple, so the node stays hashable.
        object.__setattr__(self, "values", tuple(self.values))
        if not self.values:
            raise ValueError("IN needs at least one value")
        for value in self.values:
            _check_value(value)


@dataclass(frozen=True, slots=True)
class IsNull:
    """``field IS [NOT] NULL``; a missing field counts as null."""

    field: str
    negated: bool = False

    def __post_init__(self) -> None:
        _check_field(self.field)


def _check_items(node: str, items: tuple[Expr, ...]) -> None:
    # A one-item And/Or has no CEQL spelling of its own (it would parse back as the bare item),
    # so it is refused; callers combine with ``conjoin``-style helpers instead.
    if len(items) < 2:
        raise ValueError(f"{node} needs at least two items; use the item itself")
    for item in items:
        if not isinstance(item, _EXPR_TYPES):
            raise TypeError(f"{node} items must be CEQL expressions, not {type(item).__name__}")


@dataclass(frozen=True, slots=True)
class And:
    """Conjunction of two or more expressions."""

    items: tuple[Expr, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        _check_items("And", self.items)


@dataclass(frozen=True, slots=True)
class Or:
    """Disjunction of two or more expressions."""

    items: tuple[Expr, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "items", tuple(self.items))
        _check_items("Or", self.items)


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT item``."""

    item: Expr

    def __post_init__(self) -> None:
        if not isinstance(self.item, _EXPR_TYPES):
            raise TypeError(f"Not wraps a CEQL expression, not {type(self.item).__name__}")


Expr: TypeAlias = Comparison | Like | In | IsNull | And | Or | Not
_EXPR_TYPES: Final = (Comparison, Like, In, IsNull, And, Or, Not)


@dataclass(frozen=True, slots=True)
class OrderKey:
    """One ``orderBy`` key: a field and its direction."""

    field: str
    descending: bool = False

    def __post_init__(self) -> None:
        _check_field(self.field)


# ---------------------------------------------------------------------------------------------
# Tokenizer. It runs on demand (one token of lookahead) so that the first error in reading
# order is the one reported, whether it is lexical or grammatical.


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "word", "string", "ident", "op", "(", ")", ",", "eof"
    value: str  # decoded text: string contents, backticked name, operator, or the word itself
    pos: int


def _describe(token: _Token) -> str:
    if token.kind == "eof":
        return "the end of the input"
    if token.kind == "string":
        text = "'" + token.value.replace("'", "''") + "'"
    elif token.kind == "ident":
        text = "`" + token.value + "`"
    else:
        text = token.value
    if len(text) > 30:  # messages are returned to API callers; keep them short
        text = text[:27] + "..."
    return repr(text)


class _Lexer:
    def __init__(self, text: str, what: str) -> None:
        self.text = text
        self.what = what
        self.index = 0
        self._peeked: _Token | None = None

    def error(self, reason: str, position: int) -> CeqlSyntaxError:
        return CeqlSyntaxError(reason, position, self.what)

    def peek(self) -> _Token:
        if self._peeked is None:
            self._peeked = self._scan()
        return self._peeked

    def next(self) -> _Token:
        token = self.peek()
        self._peeked = None
        return token

    def _scan(self) -> _Token:
        text = self.text
        n = len(text)
        i = self.index
        while i < n and text[i].isspace():
            i += 1
        if i >= n:
            self.index = n
            return _Token("eof", "", n)
        c = text[i]
        if c in "(),":
            self.index = i + 1
            return _Token(c, c, i)
        if c == "'":
            return self._scan_string(i)
        if c == "`":
            end = text.find("`", i + 1)
            if end < 0:
                raise self.error("unterminated backticked field name", i)
            if end == i + 1:
                raise self.error("empty field name", i)
            self.index = end + 1
            return _Token("ident", text[i + 1 : end], i)
        if c in _OP_CHARS:
            j = i
            while j < n and text[j] in _OP_CHARS:
                j += 1
            op = text[i:j]
            if op not in _LEX_OPS:
                raise self.error(f"unknown operator {op!r}", i)
            self.index = j
            return _Token("op", op, i)
        if c in _WORD_CHARS or (c == "-" and i + 1 < n and text[i + 1] in _DIGITS):
            j = i + 1
            while j < n and text[j] in _WORD_CHARS:
                j += 1
            self.index = j
            return _Token("word", text[i:j], i)
        if c == '"':
            raise self.error("unexpected character '\"' (strings use single quotes)", i)
        raise self.error(f"unexpected character {c!r}", i)

    def _scan_string(self, start: int) -> _Token:
        text = self.text
        parts: list[str] = []
        i = start + 1
        while True:
            end = text.find("'", i)
            if end < 0:
                raise self.error("unterminated string", start)
            parts.append(text[i:end])
            if text.startswith("''", end):  # a doubled quote is one literal quote
                parts.append("'")
                i = end + 2
                continue
            self.index = end + 1
            return _Token("string", "".join(parts), start)


# ---------------------------------------------------------------------------------------------
# Parser.


def _number(word: str) -> int | Decimal | None:
    """The number a word spells per the grammar, or None if it is not a number literal."""
    body = word[1:] if word.startswith("-") else word
    whole, dot, fraction = body.partition(".")
    if not whole or not all(ch in _DIGITS for ch in whole):
        return None
    if dot:
        if not fraction or not all(ch in _DIGITS for ch in fraction):
            return None
        return Decimal(word)
    return int(word)


def is_plain_identifier(name: str) -> bool:
    """True when ``name`` can be written without backticks (and is not a keyword)."""
    if not name or name[0] not in _IDENT_START or name.upper() in KEYWORDS:
        return False
    if not all(ch in _WORD_CHARS for ch in name):
        return False
    return all(name.split("."))  # no empty segment: "a..b", "a." need backticks


class _Parser:
    def __init__(self, text: str, what: str) -> None:
        self.lex = _Lexer(text, what)
        self.depth = 0

    def error(self, reason: str, token: _Token) -> CeqlSyntaxError:
        return self.lex.error(reason, token.pos)

    def keyword(self, name: str) -> bool:
        """Consume the next token if it is the keyword ``name``."""
        token = self.lex.peek()
        if token.kind == "word" and token.value.upper() == name:
            self.lex.next()
            return True
        return False

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nesting is too deep (more than {MAX_DEPTH} levels)", token)

    # where := or EOF
    def where(self) -> Expr:
        token = self.lex.peek()
        if token.kind == "eof":
            raise self.error("expected a condition", token)
        expr = self.or_()
        token = self.lex.peek()
        if token.kind != "eof":
            if token.kind == ")":
                raise self.error("unexpected ')' without a matching '('", token)
            raise self.error(f"expected AND, OR or the end, found {_describe(token)}", token)
        return expr

    # or := and (OR and)*
    def or_(self) -> Expr:
        items = [self.and_()]
        while self.keyword("OR"):
            items.append(self.and_())
        return items[0] if len(items) == 1 else Or(tuple(items))

    # and := not (AND not)*
    def and_(self) -> Expr:
        items = [self.not_()]
        while self.keyword("AND"):
            items.append(self.not_())
        return items[0] if len(items) == 1 else And(tuple(items))

    # not := NOT not | primary   (a loop rather than recursion; depth still counts each NOT)
    def not_(self) -> Expr:
        count = 0
        while True:
            token = self.lex.peek()
            if not self.keyword("NOT"):
                break
            self.enter(token)
            count += 1
        expr = self.primary()
        for _ in range(count):
            expr = Not(expr)
        self.depth -= count
        return expr

    # primary := '(' or ')' | predicate
    def primary(self) -> Expr:
        token = self.lex.peek()
        if token.kind != "(":
            return self.predicate()
        self.lex.next()
        self.enter(token)
        expr = self.or_()
        closing = self.lex.next()
        if closing.kind != ")":
            raise self.error(f"expected ')' or AND/OR, found {_describe(closing)}", closing)
        self.depth -= 1
        return expr

    def predicate(self) -> Expr:
        field = self.field()
        token = self.lex.next()
        if token.kind == "op":
            op = "!=" if token.value == "<>" else token.value
            return Comparison(field, op, self.value())
        word = token.value.upper() if token.kind == "word" else ""
        negated = word == "NOT"
        if negated:
            token = self.lex.next()
            word = token.value.upper() if token.kind == "word" else ""
            if word not in ("LIKE", "IN"):
                raise self.error(f"expected LIKE or IN after NOT, found {_describe(token)}", token)
        if word == "LIKE":
            pattern = self.lex.next()
            if pattern.kind != "string":
                raise self.error("expected a quoted pattern after LIKE", pattern)
            return Like(field, pattern.value, negated)
        if word == "IN":
            return In(field, self.value_list(), negated)
        if word == "IS":
            is_not = self.keyword("NOT")
            token = self.lex.next()
            if token.kind != "word" or token.value.upper() != "NULL":
                expected = "NULL" if is_not else "NULL or NOT NULL"
                raise self.error(f"expected {expected} after IS", token)
            return IsNull(field, is_not)
        raise self.error(
            f"expected an operator (= != <> < > <= >= LIKE IN IS), found {_describe(token)}",
            token,
        )

    def value_list(self) -> tuple[Value, ...]:
        token = self.lex.next()
        if token.kind != "(":
            raise self.error("expected '(' after IN", token)
        values = [self.value()]
        while True:
            token = self.lex.next()
            if token.kind == ")":
                return tuple(values)
            if token.kind != ",":
                raise self.error(f"expected ',' or ')', found {_describe(token)}", token)
            values.append(self.value())

    def value(self) -> Value:
        token = self.lex.next()
        if token.kind == "string":
            return token.value
        if token.kind == "word":
            word = token.value
            if word[0] in _DIGITS or word[0] == "-":
                if len(word) > _MAX_NUMBER_LENGTH:
                    raise self.error("number is too long", token)
                number = _number(word)
                if number is None:
                    raise self.error(f"invalid number {_describe(token)}", token)
                return number
            upper = word.upper()
            if upper in ("TRUE", "FALSE"):
                return upper == "TRUE"
            if upper == "NULL":
                raise self.error("NULL is not a value; use IS NULL or IS NOT NULL", token)
            raise self.error(
                f"expected a value, found {_describe(token)} (strings need single quotes)", token
            )
        raise self.error("expected a value", token)

    def field(self) -> str:
        token = self.lex.next()
        if token.kind in ("ident", "string"):
            if not token.value:
                raise self.error("empty field name", token)
            if "`" in token.value:
                raise self.error("a field name cannot contain a backtick", token)
            return token.value
        if token.kind == "word":
            if token.value.upper() in KEYWORDS:
                raise self.error(
                    f"expected a field name, found the keyword {_describe(token)} "
                    "(backtick a field with that name)",
                    token,
                )
            if is_plain_identifier(token.value):
                return token.value
            raise self.error(f"invalid field name {_describe(token)} (use backticks)", token)
        raise self.error("expected a field name", token)

    def order_by(self) -> tuple[OrderKey, ...]:
        if self.lex.peek().kind == "eof":
            return ()
        keys: list[OrderKey] = []
        while True:
            field = self.field()
            descending = self.keyword("DESC")
            explicit = descending or self.keyword("ASC")
            keys.append(OrderKey(field, descending))
            token = self.lex.next()
            if token.kind == "eof":
                return tuple(keys)
            if token.kind != ",":
                expected = "',' or the end" if explicit else "ASC, DESC, ',' or the end"
                raise self.error(f"expected {expected}, found {_describe(token)}", token)

    def fields(self) -> tuple[str, ...]:
        if self.lex.peek().kind == "eof":
            return ()
        names: list[str] = []
        while True:
            names.append(self.field())
            token = self.lex.next()
            if token.kind == "eof":
                return tuple(names)
            if token.kind != ",":
                raise self.error(f"expected ',', found {_describe(token)}", token)


def _new_parser(text: object, what: str) -> _Parser:
    if not isinstance(text, str):
        raise CeqlSyntaxError("expected text", 0, what)
    if len(text) > MAX_LENGTH:
        raise CeqlSyntaxError(f"too long (more than {MAX_LENGTH} characters)", MAX_LENGTH, what)
    return _Parser(text, what)


def parse(text: str) -> Expr:
    """Parse a ``where`` clause; raises ``CeqlSyntaxError`` (only) on any invalid input."""
    parser = _new_parser(text, "where clause")
    try:
        return parser.where()
    except RecursionError:
        # MAX_DEPTH should make this unreachable; it stays as a guard for callers that already
        # run very deep, since a RecursionError would otherwise surface as a 500.
        raise CeqlSyntaxError("nesting is too deep", parser.lex.index) from None


def parse_order_by(text: str) -> tuple[OrderKey, ...]:
    """Parse an ``orderBy`` value such as ``date_sent desc, to``; blank text gives ``()``."""
    return _new_parser(text, "orderBy").order_by()


def parse_fields(text: str) -> tuple[str, ...]:
    """Parse a ``fields`` value (comma-separated field names); blank text gives ``()``."""
    return _new_parser(text, "fields").fields()


# ---------------------------------------------------------------------------------------------
# Rendering.


def render_field(field: str) -> str:
    """A field name as CEQL source: bare when possible, else backticked."""
    return field if is_plain_identifier(field) else f"`{field}`"


def render_value(value: Value) -> str:
    """A literal as CEQL source; parses back to an equal value of the same type."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        # Fixed-point (the grammar has no exponents), and always with a point so that the
        # literal parses back as a Decimal rather than an int.
        text = format(value, "f")
        return text if "." in text else text + ".0"
    return "'" + value.replace("'", "''") + "'"


def _render_values(values: Iterable[Value]) -> str:
    return "(" + ", ".join(render_value(v) for v in values) + ")"


def _render_child(expr: Expr) -> str:
    # Parentheses make no AST node, so wrapping every compound child is always safe and keeps
    # nested And/Or from flattening on the way back.
    text = to_ceql(expr)
    return f"({text})" if isinstance(expr, And | Or) else text


def to_ceql(expr: Expr) -> str:
    """Render an AST as canonical CEQL text; ``parse(to_ceql(e)) == e``."""
    if isinstance(expr, Comparison):
        return f"{render_field(expr.field)} {expr.op} {render_value(expr.value)}"
    if isinstance(expr, Like):
        keyword = "NOT LIKE" if expr.negated else "LIKE"
        return f"{render_field(expr.field)} {keyword} {render_value(expr.pattern)}"
    if isinstance(expr, In):
        keyword = "NOT IN" if expr.negated else "IN"
        return f"{render_field(expr.field)} {keyword} {_render_values(expr.values)}"
    if isinstance(expr, IsNull):
        keyword = "IS NOT NULL" if expr.negated else "IS NULL"
        return f"{render_field(expr.field)} {keyword}"
    if isinstance(expr, And):
        return " AND ".join(_render_child(item) for item in expr.items)
    if isinstance(expr, Or):
        return " OR ".join(_render_child(item) for item in expr.items)
    return f"NOT {_render_child(expr.item)}"
