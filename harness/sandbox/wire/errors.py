"""Exceptions across the wire: raised again on the receiving side as a subclass of the same builtin type."""
import builtins


class RemoteError(Exception):
    """An exception raised on the other side. Subclasses also derive from the builtin type it had."""

    remote_type = "Exception"
    remote_traceback = ""
    origin = None  # the other side's handle for the exception object this one stands for
    learner_line = None  # (file, line number, line) of the deepest frame in the learner's file, if any



def _builtin_base(error: BaseException) -> str:
    for cls in type(error).__mro__:
        if cls.__module__ == "builtins" and issubclass(cls, Exception) and cls is not RemoteError:
            return cls.__name__
    return "Exception"





_error_classes: dict[tuple[str, str], type] = {}


def remote_error_class(name: str, builtin: str) -> type:
    """A RemoteError that is also the builtin exception type the original had (ValueError, ...)."""
    key = (name, builtin)
    if key not in _error_classes:
        base = getattr(builtins, builtin, Exception)
        if not (isinstance(base, type) and issubclass(base, Exception)):
            base = Exception
        special = _special_error_base(name)
        bases = tuple(dict.fromkeys(b for b in (special, base, RemoteError) if b is not None))
        bases = tuple(b for b in bases if not any(other is not b and issubclass(other, b) for other in bases)) or (RemoteError,)
        _error_classes[key] = type(name, bases, {"remote_type": name, "__module__": "learner"})
    return _error_classes[key]


def _special_error_base(name: str) -> "type | None":
    """Errors the checker recognises by type: the stub's, a kata file that does not import, a shape check."""
    if name == "TypeCheckError":
        from jaxtyping import TypeCheckError
        return TypeCheckError
    if name == "KataImportError":
        from harness.loader import KataImportError
        return KataImportError
    return None

