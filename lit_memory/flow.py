"""`PhaseFlow`: which phase changes a conversation may make, as plain data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .enums import ConversationPhase
from .errors import InvalidInputError, PhaseTransitionError

__all__ = ["PhaseFlow", "DEFAULT_FLOW"]


class PhaseFlow:
    """The allowed transitions between phases: a mapping of phase -> phases it may move to.

    A custom flow is a plain mapping, not a subclass::

        PhaseFlow({"initial": ["cultural_research"], "cultural_research": ["generation_complete"]})

    Phases are given as `ConversationPhase` members or their string values. Staying in the
    same phase is always allowed (it records nothing new about the flow).
    """

    def __init__(
        self,
        transitions: Mapping[ConversationPhase | str, Iterable[ConversationPhase | str]],
        *,
        initial: ConversationPhase | str = ConversationPhase.INITIAL,
    ) -> None:
        if not isinstance(transitions, Mapping):
            raise InvalidInputError(
                "a PhaseFlow is built from a mapping of phase -> allowed phases"
            )
        self.initial = ConversationPhase.parse(initial)
        self._allowed: dict[ConversationPhase, frozenset[ConversationPhase]] = {
            ConversationPhase.parse(src): frozenset(ConversationPhase.parse(d) for d in dests)
            for src, dests in transitions.items()
        }

    @classmethod
    def linear(cls) -> PhaseFlow:
        """The seed's flow: each phase to the next, any phase to ERROR, ERROR back to INITIAL."""
        phases = list(ConversationPhase)
        error = ConversationPhase.ERROR
        steps: dict[ConversationPhase | str, list[ConversationPhase | str]] = {}
        for phase in phases:
            nxt = ConversationPhase.get_next_phase(phase)
            steps[phase] = [error] if nxt is error else [nxt, error]
        steps[error] = [ConversationPhase.INITIAL]
        return cls(steps)

    def allowed_from(self, phase: ConversationPhase | str) -> frozenset[ConversationPhase]:
        """The phases `phase` may move to."""
        return self._allowed.get(ConversationPhase.parse(phase), frozenset())

    def can_transition(
        self, from_phase: ConversationPhase | str, to_phase: ConversationPhase | str
    ) -> bool:
        """Whether moving from `from_phase` to `to_phase` is allowed (staying put always is)."""
        src, dst = ConversationPhase.parse(from_phase), ConversationPhase.parse(to_phase)
        return src == dst or dst in self.allowed_from(src)

    def check(self, from_phase: ConversationPhase | str, to_phase: ConversationPhase | str) -> None:
        """Raise PhaseTransitionError when the flow forbids the transition."""
        if self.can_transition(from_phase, to_phase):
            return
        src, dst = ConversationPhase.parse(from_phase), ConversationPhase.parse(to_phase)
        allowed = ", ".join(sorted(p.value for p in self.allowed_from(src))) or "nothing"
        raise PhaseTransitionError(
            f"the phase flow forbids {src.value} -> {dst.value}; "
            f"from {src.value} it allows: {allowed}",
            from_phase=src.value,
            to_phase=dst.value,
        )

    def to_dict(self) -> dict[str, list[str]]:
        """The flow as plain data (phase value -> sorted list of phase values)."""
        return {src.value: sorted(d.value for d in dsts) for src, dsts in self._allowed.items()}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PhaseFlow) and other._allowed == self._allowed

    def __hash__(self) -> int:
        return hash(frozenset(self._allowed.items()))

    def __repr__(self) -> str:
        return f"PhaseFlow({self.to_dict()!r})"


DEFAULT_FLOW = PhaseFlow.linear()
