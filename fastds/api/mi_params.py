"""The MI protocol's pieces every command module uses: errors and parameters as OpenSIPS 3.4 has them.

Owns MiError (an error reply: code, message, optional "data"), the JSON-RPC error codes,
reading string / integer / boolean parameters the way OpenSIPS's get_mi_*_param do, and
matching a request's parameters to a command's parameter sets ("recipes"; OpenSIPS 3.4 mi/mi.c, mi/fmt.c).
"""

from __future__ import annotations

from typing import Any

PARTITION = "default"  # fastds has one partition; OpenSIPS names its first one "default"
PARSE_ERROR = (-32700, "Parse error")
INVALID_REQUEST = (-32600, "Invalid Request")
METHOD_NOT_FOUND = (-32601, "Method not found")
INVALID_PARAMS = (-32602, "Invalid params")


class MiError(Exception):
    """An error reply: code, message and an optional "data" detail."""

    def __init__(self, code: int, message: str, data: str | None = None):
        super().__init__(message)
        self.code, self.message, self.data = code, message, data

    def as_json(self) -> dict[str, Any]:
        error = {"code": self.code, "message": self.message}
        if self.data:
            error["data"] = self.data
        return error


def bad_type(name: str) -> MiError:
    return MiError(*INVALID_PARAMS, f"Bad type for parameter '{name}'")


def string_param(params: dict[str, Any], name: str) -> str:
    """OpenSIPS get_mi_string_param: a string, or a number printed as one."""
    value = params[name]
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(value))
    raise bad_type(name)


def int_param(params: dict[str, Any], name: str) -> int:
    """OpenSIPS get_mi_int_param: a number, or a string holding a signed integer."""
    value = params[name]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip(), 10)
        except ValueError:
            pass
    raise bad_type(name)


def bool_like_param(params: dict[str, Any], name: str) -> bool:
    """OpenSIPS get_mi_bool_like_param: exactly one of 0/n/N is no, anything else yes."""
    value = params[name]
    text = value if isinstance(value, str) else str(int(value)) if isinstance(value, (int, float)) else "1"
    return not (len(text) == 1 and text in "0nN")


def match_recipe(recipes: list[tuple[str, ...]], params: Any) -> dict[str, Any]:
    """The params by name, once a parameter set of the command matches them (OpenSIPS
    get_cmd_recipe); MiError otherwise."""
    if params is None:
        if () in recipes:
            return {}
        raise MiError(*INVALID_PARAMS, "Too few or too many parameters")
    if isinstance(params, list):
        matches = [recipe for recipe in recipes if recipe and len(recipe) == len(params)]
        if len(matches) > 1:
            raise MiError(*INVALID_PARAMS, "Ambiguous call, use named parameters instead")
        if not matches:
            raise MiError(*INVALID_PARAMS, "Too few or too many parameters")
        return dict(zip(matches[0], params))
    same_count = [recipe for recipe in recipes if recipe and len(recipe) == len(params)]
    for recipe in same_count:
        if all(name in params for name in recipe):
            return params
    raise MiError(*INVALID_PARAMS, "Named parameters do not match" if same_count else "Too few or too many parameters")
