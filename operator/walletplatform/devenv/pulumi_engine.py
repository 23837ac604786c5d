"""The real Pulumi engine, offline, against a local cluster: the CLI and the Kubernetes provider that
hack/toolchain.sh built from their Go module sources, a file backend and a private PULUMI_HOME.

The program runs through the Automation API's inline-program language server (part of the pulumi
Python SDK): this machine's Go module proxy serves no version of the Python language host
(github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), so ``pulumi up`` from a shell
needs a regular Pulumi install. The CLI then finds the provider on PATH as an ambient plugin and,
with no Python language plugin, starts a policy pack through ``pulumi-analyzer-policy-python``: the
launcher Pulumi's own releases ship (sdk/python/dist), written here because the module zip lacks it.
It runs the SDK's ``python -m pulumi.policy`` in the pack's virtualenv."""

from __future__ import annotations

import pathlib
import shutil
import sys
from collections.abc import Callable

from pulumi import automation as auto

from walletplatform.devenv import toolchain

ROOT = toolchain.ROOT
PROJECT = "wallet-platform"
PASSPHRASE = "wallet-tests"  # only encrypts the throwaway file backend's secrets

ANALYZER_LAUNCHER = """#!/bin/sh
# pulumi-analyzer-policy-python ENGINE PACK [-virtualenv=DIR]: serve a Python policy pack.
python="{python}"
for arg in "$@"; do
  case $arg in -virtualenv=*) venv="${{arg#*=}}"; case $venv in /*) ;; *) venv="$PWD/$venv";; esac
    [ -x "$venv/bin/python" ] && python="$venv/bin/python";;
  esac
done
exec "$python" -u -m pulumi.policy "$1" "$2"
"""


class Engine:
    """One PULUMI_HOME, backend and PATH; ``stack`` opens a stack of this project on it."""

    def __init__(self, home: pathlib.Path, kubeconfig: pathlib.Path, binaries: toolchain.Binaries) -> None:
        self.home = home
        bin_dir = home / "pulumi" / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        for name, target in (
            ("pulumi", binaries.pulumi),
            ("pulumi-resource-kubernetes", binaries.pulumi_kubernetes),
        ):
            link = bin_dir / name
            link.unlink(missing_ok=True)
            link.symlink_to(target)
        launcher = bin_dir / "pulumi-analyzer-policy-python"
        launcher.write_text(ANALYZER_LAUNCHER.format(python=sys.executable))
        launcher.chmod(0o755)
        (home / "state").mkdir(exist_ok=True)
        self.command = auto.PulumiCommand(root=str(home / "pulumi"))
        self.env = {
            "PATH": f"{bin_dir}:{pathlib.Path(sys.executable).parent}:/usr/bin:/bin",
            "PULUMI_HOME": str(home / "pulumi"),
            "PULUMI_BACKEND_URL": f"file://{home / 'state'}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "KUBECONFIG": str(kubeconfig),
        }

    def stack(self, name: str, config_file: pathlib.Path, program: Callable[[], None]) -> auto.Stack:
        """The stack ``name`` with the settings of ``config_file`` (a Pulumi.<env>.yaml), in its own
        work dir so the committed config files are never rewritten."""
        work = self.home / "work" / name
        work.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(config_file, work / f"Pulumi.{name}.yaml")
        return auto.create_or_select_stack(
            stack_name=name,
            project_name=PROJECT,
            program=program,
            opts=auto.LocalWorkspaceOptions(
                work_dir=str(work),
                pulumi_home=self.env["PULUMI_HOME"],
                env_vars=self.env,
                pulumi_command=self.command,
                project_settings=auto.ProjectSettings(name=PROJECT, runtime="python"),
            ),
        )
