"""Reading input documents for the CLI: YAML files with one or many documents, errors as Problems."""

from __future__ import annotations

import pathlib
import sys

import yaml

from walletplatform.models import errors


def read_documents(path: str) -> list[object]:
    """All YAML documents of a file (``-`` for stdin); SpecError when the file is unreadable."""
    try:
        text = sys.stdin.read() if path == "-" else pathlib.Path(path).read_text()
    except OSError as exc:
        raise errors.SpecError([errors.Problem(path=path, message=exc.strerror or str(exc))]) from None
    try:
        docs = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise errors.SpecError([errors.Problem(path=where, message=f"not valid YAML: {problem}")]) from None
    if not docs:
        raise errors.SpecError([errors.Problem(path=path, message="contains no documents")])
    return docs


class _PlainDumper(yaml.SafeDumper):
    """Never writes anchors and aliases (&id001): people read and diff this output."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump_yaml(objects: list[object]) -> str:
    """Multi-document YAML with keys in the order the renderer wrote them."""
    return yaml.dump_all(objects, Dumper=_PlainDumper, sort_keys=False, explicit_start=True, width=120)
