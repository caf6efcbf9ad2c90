"""Always-on assertions for money code: `assert` vanishes under -O, `invariant` never does."""


class InvariantViolation(RuntimeError):
    """A programmer error: a condition the code relies on did not hold. Never a user error."""


def invariant(condition: bool, why: str) -> None:
    if not condition:
        raise InvariantViolation(why)
