"""walletctl render, validate and crds: thin wrappers over the pure core."""

from __future__ import annotations

import argparse
import pathlib

from walletplatform import catalog, crd, render, rules
from walletplatform.cli import io
from walletplatform.models import errors, resources


def load_platforms(path: str, cat: catalog.Catalog) -> list[catalog.ResolvedPlatform]:
    """Parse and resolve every WalletPlatform in a file; SpecError lists every problem in all of them."""
    resolved, problems = [], []
    for index, data in enumerate(io.read_documents(path)):
        prefix = f"[{index}] " if index else ""
        try:
            doc = resources.parse_document(data)
            if not isinstance(doc, resources.WalletPlatform):
                raise errors.SpecError([errors.Problem(path="kind", message=f"{doc.kind} cannot be rendered")])
            resolved.append(catalog.resolve(doc.metadata.name, doc.metadata.namespace, doc.spec, cat))
        except errors.SpecError as exc:
            problems += [errors.Problem(path=prefix + p.path, message=p.message) for p in exc.problems]
    if problems:
        raise errors.SpecError(problems)
    return resolved


def cmd_render(args: argparse.Namespace) -> int:
    objects: list[object] = []
    for platform in load_platforms(args.file, catalog.load_catalog(args.catalog)):
        objects += render.render_platform(platform)
    print(io.dump_yaml(objects), end="")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    cat = catalog.load_catalog(args.catalog)
    problems: list[errors.Problem] = []
    platforms = {}
    if args.platform:
        for platform in load_platforms(args.platform, cat):
            platforms[platform.name] = platform
    documents = io.read_documents(args.file)
    summaries = []
    for index, data in enumerate(documents):
        prefix = f"[{index}] " if len(documents) > 1 else ""
        try:
            doc = resources.parse_document(data)
            if isinstance(doc, resources.WalletPlatform):
                resolved = catalog.resolve(doc.metadata.name, doc.metadata.namespace, doc.spec, cat)
                found = rules.check_platform(resolved, render.render_platform(resolved))
            else:
                found = rules.check_policy(doc.spec, platforms.get(doc.spec.platform_ref), cat)
            if found:
                raise errors.SpecError(found)
            summaries.append(f"ok: {doc.kind} {doc.metadata.namespace}/{doc.metadata.name}")
        except errors.SpecError as exc:
            problems += [errors.Problem(path=prefix + p.path, message=p.message) for p in exc.problems]
    if problems:
        raise errors.SpecError(problems)
    print("\n".join(summaries))
    return 0


def cmd_crds(args: argparse.Namespace) -> int:
    text = io.dump_yaml(list(crd.render_crds()))
    if args.output:
        pathlib.Path(args.output).write_text(text)
    else:
        print(text, end="")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add render, validate and crds to the walletctl parser."""
    for name, func, text in (
        ("render", cmd_render, "print every Kubernetes object of the WalletPlatform(s) in a file"),
        ("validate", cmd_validate, "check WalletPlatform and ScalingPolicy files (schema and platform rules)"),
    ):
        parser = sub.add_parser(name, help=text, description=text)
        parser.add_argument("-f", "--file", required=True, help="YAML file, or - for stdin")
        parser.add_argument(
            "--catalog",
            type=pathlib.Path,
            default=catalog.DEFAULT_DIR,
            help="service catalog folder (default: services/)",
        )
        if name == "validate":
            parser.add_argument("--platform", help="WalletPlatform file that ScalingPolicies refer to")
        parser.set_defaults(func=func)
    parser = sub.add_parser("crds", help="print the generated CustomResourceDefinitions")
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")
    parser.set_defaults(func=cmd_crds)
