"""Reading input documents for the CLI: YAML files with one or many documents, errors as Problems."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Sequence

import yaml

from walletplatform.models import errors


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice, as kubectl does (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, str | int | float | bool) and key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, f"found duplicate key {key!r}", key_node.start_mark
                )
            if isinstance(key, str | int | float | bool):
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _refuse(where: str, message: str) -> errors.SpecError:
    return errors.SpecError([errors.Problem(path=where, message=message)])


def read_text(path: str, where: str | None = None) -> str:
    """A file's text (``-`` for stdin); SpecError at ``where`` (a flag, say; default the path itself)
    when it cannot be read or is not UTF-8."""
    try:
        raw = sys.stdin.buffer.read() if path == "-" else pathlib.Path(path).read_bytes()
    except OSError as exc:
        reason = str(exc.strerror or exc)
        raise _refuse(where or path, f"cannot read {path}: {reason}" if where else reason) from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
        raise _refuse(where or path, f"{path} {reason}" if where else reason) from None


def read_documents(path: str) -> list[object]:
    """All YAML documents of a file (``-`` for stdin); SpecError naming the file on anything it cannot
    read: not UTF-8, not YAML, a duplicate key, nesting too deep, a number too long to convert."""
    refuse = _refuse
    text = read_text(path)
    try:
        docs = [doc for doc in yaml.load_all(text, Loader=_StrictLoader) if doc is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else path
        problem = getattr(exc, "problem", None) or str(exc)
        raise refuse(where, f"not valid YAML: {problem}") from None
    except RecursionError:
        raise refuse(path, "not valid YAML: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise refuse(path, f"not valid YAML: {str(exc).split(';')[0]}") from None
    if not docs:
        raise refuse(path, "contains no documents")
    return docs


def check_output(flag: str, path: str | None) -> None:
    """Refuse an output file whose folder does not exist before any work is done (a backtest that ran
    for minutes then failed to write its plot lost its results)."""
    if path is None:
        return
    folder = pathlib.Path(path).expanduser().resolve().parent
    if not folder.is_dir():
        raise errors.SpecError([errors.Problem(path=flag, message=f"folder {folder} does not exist")])


class _PlainDumper(yaml.SafeDumper):
    """Never writes anchors and aliases (&id001): people read and diff this output."""

    def ignore_aliases(self, data: object) -> bool:
        return True


def dump_yaml(objects: Sequence[object]) -> str:
    """Multi-document YAML with keys in the order the renderer wrote them."""
    return yaml.dump_all(objects, Dumper=_PlainDumper, sort_keys=False, explicit_start=True, width=120)
