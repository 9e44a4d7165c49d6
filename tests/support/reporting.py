"""A Reporter that records what a use case tells and answers its questions as told: for in-process tests."""

from __future__ import annotations

from dataclasses import dataclass, field

from broadsheet.core.errors import BroadsheetError


class _Quiet:
    def __call__(self, counts: dict[str, int], rate: float) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class Recorder:
    answer: bool = True  # what confirm() says
    infos: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    problems: list[BroadsheetError] = field(default_factory=list)
    questions: list[str] = field(default_factory=list)

    def info(self, line: str) -> None:
        self.infos.append(line)

    def warn(self, line: str) -> None:
        self.warnings.append(line)

    def problem(self, error: BroadsheetError) -> None:
        self.problems.append(error)

    def progress(self) -> _Quiet:
        return _Quiet()

    def confirm(self, question: str) -> bool:
        self.questions.append(question)
        return self.answer

    @property
    def out(self) -> str:
        return "\n".join(self.infos)
