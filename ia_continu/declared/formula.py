"""A safe arithmetic formula over feature columns, for declared fallbacks.

``distance_km * 0.5`` or ``feature1 >= feature2`` is parsed once with :mod:`ast` when the
declaration is loaded and turned into a tree of small numpy closures; nothing is ever passed
to ``eval``/``exec`` and no name outside the declared features and the functions below can be
reached. The allowed grammar:

- numbers (finite ints and floats; not booleans, strings or complex numbers);
- feature names (the declaration's, numeric ones only);
- ``+ - * /``, ``**`` with a constant exponent of at most 4 in absolute value (so a formula
  cannot ask for ``x ** 10 ** 9``), unary ``-``/``+``, parentheses;
- comparisons ``< <= > >= == !=`` (chains too: ``7 <= hour <= 9``), worth 1.0 when true and
  0.0 when false so they can be added and multiplied; ``and``/``or``/``not`` on those;
- the functions ``abs(x)``, ``min(a, b, ...)``, ``max(a, b, ...)`` (element-wise),
  ``round(x)``/``round(x, digits)`` and ``clip(x, low, high)``.

Anything else (attribute access, subscripts, calls to other names, keyword arguments,
lambdas, comprehensions, strings, conditional expressions) is refused with a message that
says what was found. Evaluation is vectorised: one numpy operation per node for the whole
batch, and always returns a float64 array with one value per row.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np

MAX_LENGTH = 500  # characters: a fallback is a rule of thumb, not a program
MAX_NODES = 200
MAX_EXPONENT = 4.0
FUNCTIONS = ("abs", "clip", "max", "min", "round")

Columns = Mapping[str, np.ndarray]
_Node = Callable[[Columns, int], np.ndarray]


class FormulaError(ValueError):
    """The formula is not in the allowed grammar; the message says where and why."""


_BINARY: dict[type[ast.operator], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
}
_COMPARE: dict[type[ast.cmpop], Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_SYMBOL = {
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.MatMult: "@",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.Invert: "~",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
_REFUSED = {
    ast.Attribute: "attribute access (x.y) is",
    ast.Subscript: "subscripts (x[...]) are",
    ast.Lambda: "lambda is",
    ast.IfExp: "conditional expressions (a if c else b) are",
    ast.ListComp: "comprehensions are",
    ast.SetComp: "comprehensions are",
    ast.DictComp: "comprehensions are",
    ast.GeneratorExp: "comprehensions are",
    ast.List: "lists are",
    ast.Tuple: "tuples are",
    ast.Set: "sets are",
    ast.Dict: "dicts are",
    ast.NamedExpr: "assignment (:=) is",
    ast.Starred: "star arguments are",
    ast.JoinedStr: "text (f-strings) is",
    ast.Await: "await is",
    ast.Yield: "yield is",
    ast.YieldFrom: "yield is",
    ast.Slice: "slices are",
}


@dataclass(frozen=True, slots=True)
class Formula:
    """A compiled formula: ``evaluate(columns, n_rows)`` gives one float per row."""

    text: str
    names: frozenset[str]  # the features it reads
    _root: _Node = field(repr=False, compare=False)

    def evaluate(self, columns: Columns, n_rows: int) -> np.ndarray:
        # Division by zero and overflow give inf/nan like numpy does, without warnings
        # spamming the serving log on every request.
        with np.errstate(all="ignore"):
            out = self._root(columns, n_rows)
        return np.broadcast_to(np.asarray(out, dtype=np.float64), (n_rows,)).copy()


def compile_formula(text: str, names: Collection[str]) -> Formula:
    """Parse and check ``text`` against the feature ``names``; raise FormulaError."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty")
    if len(text) > MAX_LENGTH:
        raise FormulaError(f"the formula is longer than {MAX_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        where = f" at column {exc.offset}" if exc.offset else ""
        raise FormulaError(f"not a valid expression{where}: {exc.msg}") from None
    nodes = sum(1 for _ in ast.walk(tree))
    if nodes > MAX_NODES:
        raise FormulaError(f"the formula has {nodes} parts; at most {MAX_NODES} are allowed")
    used: set[str] = set()
    root = _Compiler(frozenset(names), used).compile(tree.body)
    return Formula(text=text, names=frozenset(used), _root=root)


def _constant(value: float) -> _Node:
    constant = np.asarray(value, dtype=np.float64)  # 0-d: broadcasts against columns
    return lambda cols, n: constant


class _Compiler:
    def __init__(self, names: frozenset[str], used: set[str]) -> None:
        self.names = names
        self.used = used

    def compile(self, node: ast.expr) -> _Node:
        if isinstance(node, ast.Constant):
            return _constant(self._number(node.value))
        if isinstance(node, ast.Name):
            return self._name(node.id)
        if isinstance(node, ast.UnaryOp):
            return self._unary(node)
        if isinstance(node, ast.BinOp):
            return self._binary(node)
        if isinstance(node, ast.Compare):
            return self._compare(node)
        if isinstance(node, ast.BoolOp):
            return self._boolean(node)
        if isinstance(node, ast.Call):
            return self._call(node)
        what = _REFUSED.get(type(node), f"{type(node).__name__} is")
        raise FormulaError(f"{what} not allowed in a formula")

    @staticmethod
    def _number(value: object) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            kind = "text" if isinstance(value, str | bytes) else type(value).__name__
            raise FormulaError(f"{kind} ({value!r}) is not allowed: only numbers")
        try:
            number = float(value)
        except OverflowError:
            raise FormulaError(f"the number {value} is too large") from None
        if not math.isfinite(number):
            raise FormulaError(f"the number {value} is not finite")
        return number

    def _name(self, name: str) -> _Node:
        if name not in self.names:
            if name in FUNCTIONS:
                raise FormulaError(f"'{name}' is a function: call it, e.g. {name}(...)")
            known = ", ".join(sorted(self.names)) or "none"
            raise FormulaError(f"'{name}' is not a numeric feature (features: {known})")
        self.used.add(name)
        return lambda cols, n: cols[name]

    def _unary(self, node: ast.UnaryOp) -> _Node:
        operand = self.compile(node.operand)
        if isinstance(node.op, ast.USub):
            return lambda cols, n: np.negative(operand(cols, n))
        if isinstance(node.op, ast.UAdd):
            return operand
        if isinstance(node.op, ast.Not):
            return lambda cols, n: np.logical_not(operand(cols, n)).astype(np.float64)
        raise FormulaError(f"the operator '{_SYMBOL.get(type(node.op), '?')}' is not allowed")

    def _binary(self, node: ast.BinOp) -> _Node:
        left = self.compile(node.left)
        if isinstance(node.op, ast.Pow):
            exponent = self._constant_exponent(node.right)
            return lambda cols, n: np.power(left(cols, n), exponent)
        op = _BINARY.get(type(node.op))
        if op is None:
            raise FormulaError(f"the operator '{_SYMBOL.get(type(node.op), '?')}' is not allowed")
        right = self.compile(node.right)
        return lambda cols, n: op(left(cols, n), right(cols, n))

    def _constant_exponent(self, node: ast.expr) -> float:
        sign = 1.0
        while isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            sign *= -1.0 if isinstance(node.op, ast.USub) else 1.0
            node = node.operand
        if not isinstance(node, ast.Constant):
            raise FormulaError("the exponent of ** must be a number, e.g. x ** 2")
        exponent = sign * self._number(node.value)
        if abs(exponent) > MAX_EXPONENT:
            raise FormulaError(f"the exponent {exponent:g} is too large (at most {MAX_EXPONENT:g})")
        return exponent

    def _compare(self, node: ast.Compare) -> _Node:
        ops = []
        for op in node.ops:
            fn = _COMPARE.get(type(op))
            if fn is None:
                raise FormulaError(f"the comparison '{_SYMBOL.get(type(op), '?')}' is not allowed")
            ops.append(fn)
        operands = [self.compile(node.left), *(self.compile(c) for c in node.comparators)]

        def compare(cols: Columns, n: int) -> np.ndarray:
            values = [operand(cols, n) for operand in operands]
            result = ops[0](values[0], values[1])
            for i in range(1, len(ops)):  # a < b < c means a < b and b < c
                result = np.logical_and(result, ops[i](values[i], values[i + 1]))
            return np.asarray(result, dtype=np.float64)

        return compare

    def _boolean(self, node: ast.BoolOp) -> _Node:
        parts = [self.compile(v) for v in node.values]
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or

        def boolean(cols: Columns, n: int) -> np.ndarray:
            result = parts[0](cols, n) != 0
            for part in parts[1:]:
                result = combine(result, part(cols, n) != 0)
            return np.asarray(result, dtype=np.float64)

        return boolean

    def _call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name):
            self.compile(node.func)  # names what is wrong: attribute access, lambda...
            raise FormulaError("only the functions " + ", ".join(FUNCTIONS) + " can be called")
        name = node.func.id
        if name not in FUNCTIONS:
            raise FormulaError(
                f"calls to '{name}' are not allowed (functions: {', '.join(FUNCTIONS)})"
            )
        if node.keywords:
            raise FormulaError(f"{name}() takes no keyword arguments")
        args = [self.compile(a) for a in node.args]
        count = len(args)
        if name == "abs":
            self._arity(name, count, 1, 1)
            return lambda cols, n: np.abs(args[0](cols, n))
        if name in ("min", "max"):
            self._arity(name, count, 2, 16)
            reduce = np.minimum if name == "min" else np.maximum

            def extreme(cols: Columns, n: int) -> np.ndarray:
                result = args[0](cols, n)
                for arg in args[1:]:
                    result = reduce(result, arg(cols, n))
                return result

            return extreme
        if name == "clip":
            self._arity(name, count, 3, 3)
            return lambda cols, n: np.clip(args[0](cols, n), args[1](cols, n), args[2](cols, n))
        # round
        self._arity(name, count, 1, 2)
        digits = 0
        if count == 2:
            arg = node.args[1]
            if not (isinstance(arg, ast.Constant) and type(arg.value) is int and arg.value < 10):
                raise FormulaError("round(x, digits): digits must be a whole number below 10")
            digits = int(arg.value)
        return lambda cols, n: np.round(args[0](cols, n), digits)

    @staticmethod
    def _arity(name: str, count: int, low: int, high: int) -> None:
        if not low <= count <= high:
            want = str(low) if low == high else f"{low} to {high}"
            raise FormulaError(f"{name}() takes {want} arguments, got {count}")
