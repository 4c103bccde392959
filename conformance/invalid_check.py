"""`assert_invalid:` — a kernel the verifier or the DSL parser must reject, and the check of it.

    assert_invalid:
      stage: verify                        # default: `k.verify()` raises VerifyError (SPEC.md §9.1)
      phrase: barrier in thread-dependent branch   # a §9.1 phrase, validated against spec.verifier.PHRASES
      at: "syncthreads()"                  # the error's DSL line contains this text (or `line: 84`)

    assert_invalid:
      stage: dsl                           # `taskmap.lang.kernel()(fn)` raises DSLError (SPEC.md §8)
      phrase: "unsupported statement `Return`"     # the message starts with this text
      at: "return"
      hint: "kernels cannot return early"  # optional: the error's hint contains this text
"""
from __future__ import annotations

from dataclasses import dataclass

from taskmap.spec import ir
from taskmap.spec.errors import DSLError, VerifyError
from taskmap.spec.verifier import PHRASES

from .places import PLACE_KEYS, Place, parse_place
from .schema import YMap, check_keys, get

INVALID_KEYS = {"stage", "phrase", "hint"} | PLACE_KEYS
STAGES = ("verify", "dsl")


@dataclass(frozen=True)
class InvalidExpectation:
    stage: str
    phrase: str
    place: Place = Place()
    hint: str | None = None

    def check(self, obj) -> tuple[str, str]:
        """(status, message) for `obj`: a kernel built with verify=False (stage verify), or a
        plain function for taskmap.lang.kernel to reject (stage dsl)."""
        try:
            if not isinstance(obj, ir.Kernel):
                from taskmap.lang import kernel
                obj = kernel()(obj)          # no launch configuration: these never run
            obj.verify()
        except (DSLError, VerifyError) as e:
            return self.judge(e)
        except Exception as e:  # noqa: BLE001 — anything else is the wrong error
            return "failed", f"expected {self.stage} error {self.phrase!r}, got {type(e).__name__}: {e}"
        return "failed", f"expected {self.stage} error {self.phrase!r}, but the kernel was accepted"

    def judge(self, e: DSLError | VerifyError) -> tuple[str, str]:
        """(status, message) for the error the reference raised."""
        stage = "dsl" if isinstance(e, DSLError) else "verify"
        if stage != self.stage:
            return "failed", f"expected a {self.stage} error {self.phrase!r}, got a {stage} error: {e}"
        matches = e.phrase.startswith(self.phrase) if stage == "dsl" else e.phrase == self.phrase
        if not matches:
            return "failed", f"wrong phrase: expected {self.phrase!r}, got {e.phrase!r} ({e})"
        loc = e.loc if isinstance(e, DSLError) else getattr(e.node, "loc", None)
        problems = self.place.problems(loc, str(e))
        if self.hint is not None and self.hint not in getattr(e, "hint", ""):
            problems.append(f"expected a hint containing {self.hint!r}, got {getattr(e, 'hint', '')!r}")
        return ("failed", "; ".join(problems) + f" (error: {e})") if problems else ("passed", "")


def parse_invalid(m: YMap) -> InvalidExpectation:
    check_keys(m, INVALID_KEYS, "assert_invalid")
    stage = get(m, "stage", "str", "verify", what="assert_invalid")
    if stage not in STAGES:
        raise m.at("stage").error("`stage:` must be `verify` (the default) or `dsl`")
    phrase = get(m, "phrase", "str", what="assert_invalid")
    if stage == "verify" and phrase not in PHRASES:
        raise m.at("phrase").error(f"{phrase!r} is not a verifier phrase (SPEC.md §9.1); expected one of: "
                                   + "; ".join(PHRASES))
    hint = get(m, "hint", "str", None, what="assert_invalid")
    if hint is not None and stage != "dsl":
        raise m.at("hint").error("`hint:` applies to `stage: dsl` errors only (verifier errors carry no hint)")
    return InvalidExpectation(stage, phrase, parse_place(m, "assert_invalid"), hint)
