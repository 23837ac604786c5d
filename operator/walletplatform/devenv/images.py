"""The images the local node runs, built without a registry or a Docker engine, from the project's own
Dockerfiles: buildah (Debian's, overlay storage, chroot isolation) builds each Dockerfile FROM a Debian
base image made here with mmdebstrap, pushes it to an image archive, and the node imports the archive
into containerd. Each archive is cached outside the clone, keyed by the hash of everything that goes
into it (Dockerfile, build context files, build arguments, base image), so a warm run builds nothing.
The data tier's images come from Debian's packages (PostgreSQL, PgBouncer, Redis) and from the
CloudNativePG and redis-operator binaries that hack/toolchain.sh builds from their Go modules.

``walletctl images`` and devenv.node call ``ensure_all``."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Callable

from walletplatform.devenv import toolchain
from walletplatform.models import platform
from walletplatform.render import postgres, redis

ROOT = toolchain.ROOT
DEBIAN_MIRROR = "http://deb.debian.org/debian"
VERSION = "0.1.0"
HOST_CA_BUNDLE = pathlib.Path("/etc/ssl/certs/ca-certificates.crt")
# overlay, not vfs: vfs stores a full copy of the root filesystem per layer (31 GB after a few dozen
# operator builds filled this machine's disk); overlay stores each layer's changes only.
STORAGE_DRIVER = "overlay"
# The data tier's images are the ones the renderer's defaults name (Debian ships those versions:
# bookworm Redis 7.0.15; trixie PostgreSQL 17 and PgBouncer 1.24), and the operators' images hold the
# binaries hack/toolchain.sh builds.
POSTGRES_REFERENCE = f"{postgres.IMAGE}:{platform.Postgres.model_fields['version'].default}"
REDIS_REFERENCE = f"{redis.IMAGE}:{platform.Redis.model_fields['version'].default}"
CNPG_VERSION = toolchain.CNPG_VERSION
REDIS_OPERATOR_VERSION = toolchain.REDIS_OPERATOR_VERSION


@dataclasses.dataclass(frozen=True)
class Base:
    """A Debian minbase root filesystem made with mmdebstrap, the FROM of the images that name it (as
    the BASE_IMAGE build argument; their Dockerfiles default to the public Debian image instead)."""

    name: str
    suite: str
    packages: tuple[str, ...]

    @property
    def tag(self) -> str:
        return f"localhost/wallet-debian-{self.name}:{self.suite}"

    @property
    def key(self) -> str:
        return hashlib.sha256(f"{self.suite} {DEBIAN_MIRROR} {' '.join(self.packages)}".encode()).hexdigest()[:16]


# Python 3.11 for the operator and the reference service (and the pause image's build stage, Redis);
# trixie for PostgreSQL 17 and PgBouncer, which bookworm does not have.
BOOKWORM = Base("python", "bookworm", ("python3", "python3-venv", "ca-certificates"))
TRIXIE = Base("minbase", "trixie", ("ca-certificates",))


@dataclasses.dataclass(frozen=True)
class Image:
    """One image: its reference, its Dockerfile and build context, and the inputs that key its cache."""

    name: str
    reference: str
    dockerfile: pathlib.Path
    context: pathlib.Path
    inputs: tuple[str, ...]  # globs relative to the context
    base: Base | None = BOOKWORM  # the BASE_IMAGE build argument; None: the Dockerfile needs none
    # A binary built by hack/toolchain.sh (its cache name), copied into the context under this name.
    binary: tuple[str, str] | None = None


def _staged(name: str) -> pathlib.Path:
    """The build context of an image made of a binary: a folder in the cache, filled by ``_stage``."""
    return toolchain.cache_dir() / "images" / f"context-{name}"


IMAGES = (
    Image("pause", f"localhost/wallet-pause:{VERSION}", ROOT / "images" / "pause" / "Dockerfile",
          ROOT / "images" / "pause", ("Dockerfile", "pause.c")),
    Image("wallet-service", f"ghcr.io/wallet-platform/wallet-service:{VERSION}",
          ROOT / "reference" / "Dockerfile", ROOT / "reference", ("Dockerfile", "walletsvc/*.py")),
    Image("wallet-operator", f"ghcr.io/wallet-platform/wallet-operator:{VERSION}",
          ROOT / "operator" / "Dockerfile", ROOT,
          # README.md is in the context (pyproject's readme) but not in the key: it is only the package's
          # long description, and a README edit should not cost a 3-minute image rebuild.
          ("operator/Dockerfile", "pyproject.toml", "operator/walletplatform/**/*.py",
           "operator/walletplatform/py.typed", "services/*.yaml")),
    Image("postgresql", POSTGRES_REFERENCE,
          ROOT / "images" / "postgresql" / "Dockerfile", ROOT / "images" / "postgresql", ("Dockerfile",), TRIXIE),
    Image("pgbouncer", postgres.PGBOUNCER_IMAGE,
          ROOT / "images" / "pgbouncer" / "Dockerfile", ROOT / "images" / "pgbouncer", ("Dockerfile",), TRIXIE),
    Image("redis", REDIS_REFERENCE,
          ROOT / "images" / "redis" / "Dockerfile", ROOT / "images" / "redis", ("Dockerfile", "entrypoint.sh")),
    Image("cloudnative-pg", f"localhost/wallet-cloudnative-pg:{CNPG_VERSION.lstrip('v')}",
          ROOT / "images" / "cnpg" / "Dockerfile", _staged("cloudnative-pg"), ("manager",), None,
          (f"cnpg-manager-{CNPG_VERSION}", "manager")),
    Image("redis-operator", f"localhost/wallet-redis-operator:{REDIS_OPERATOR_VERSION.lstrip('v')}",
          ROOT / "images" / "redis-operator" / "Dockerfile", _staged("redis-operator"), ("operator",), None,
          (f"redis-operator-{REDIS_OPERATOR_VERSION}", "operator")),
)  # fmt: skip
BY_NAME = {image.name: image for image in IMAGES}
PAUSE = BY_NAME["pause"].reference
SERVICE = BY_NAME["wallet-service"].reference
OPERATOR = BY_NAME["wallet-operator"].reference
POSTGRES = BY_NAME["postgresql"].reference
PGBOUNCER = BY_NAME["pgbouncer"].reference
REDIS = BY_NAME["redis"].reference
CNPG = BY_NAME["cloudnative-pg"].reference
REDIS_OPERATOR = BY_NAME["redis-operator"].reference


def cache_dir() -> pathlib.Path:
    return toolchain.cache_dir() / "images"


def _buildah(*args: str, timeout: float = 1800) -> str:
    storage = toolchain.cache_dir() / "buildah"
    argv = [
        "buildah",
        "--storage-driver",
        STORAGE_DRIVER,
        "--root",
        str(storage / "root"),
        "--runroot",
        str(storage / "run"),
    ]
    result = subprocess.run(
        [*argv, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"buildah {' '.join(args[:2])}: {result.stderr.strip()[-3000:]}")
    return result.stdout


def content_key(image: Image, base_key: str) -> str:
    """A hash of every input of the image (its Dockerfile, the context's file names and bytes), its
    reference and its base."""
    digest = hashlib.sha256(f"{image.reference}\n{base_key}\n".encode())
    digest.update(image.dockerfile.read_bytes() + b"\0")
    files = sorted({p for pattern in image.inputs for p in image.context.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(str(path.relative_to(image.context)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _stage(image: Image) -> None:
    """Copies the image's binary from the toolchain cache into its context (raises if not built)."""
    if image.binary is None:
        return
    cached, name = image.binary
    source = toolchain.cache_dir() / "bin" / cached
    if not source.exists():
        raise FileNotFoundError(f"{source} is missing: run hack/toolchain.sh data-operators first")
    image.context.mkdir(parents=True, exist_ok=True)
    target = image.context / name
    if not target.exists() or target.read_bytes() != source.read_bytes():
        partial = target.with_suffix(".partial")
        shutil.copyfile(source, partial)
        partial.chmod(0o755)
        partial.rename(target)


def ensure_base(base: Base, say: Callable[[str], None]) -> str:
    """The Debian base in buildah's storage; returns its cache key."""
    folder = cache_dir() / f"base-{base.name}-{base.key}"
    marker = folder / "built"
    if marker.exists() and _buildah("images", "-q", base.tag).strip():
        return base.key
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say(f"image base: mmdebstrap {base.suite} minbase + {', '.join(base.packages)}")
    rootfs = folder / "rootfs.tar"
    subprocess.run(
        ["mmdebstrap", "--variant=minbase", f"--include={','.join(base.packages)}", "--format=tar",
         "--aptopt=Acquire::Retries=3", base.suite, str(rootfs), DEBIAN_MIRROR],
        check=True, capture_output=True, timeout=1200,
    )  # fmt: skip
    (folder / "Dockerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["/bin/bash"]\n')
    _buildah("bud", "--quiet", "-f", str(folder / "Dockerfile"), "-t", base.tag, str(folder))
    rootfs.unlink()
    marker.write_text(base.key)
    say(f"image base {base.tag}: built in {time.monotonic() - started:.0f}s")
    return base.key


def ensure(image: Image, say: Callable[[str], None]) -> pathlib.Path:
    """The image's archive, built from its Dockerfile unless the cache holds one for the same inputs."""
    _stage(image)
    base_key = ensure_base(image.base, say) if image.base else "none"
    key = content_key(image, base_key)
    archive = cache_dir() / f"{image.name}-{key}.tar"
    if archive.exists():
        return archive
    started = time.monotonic()
    say(f"image {image.reference}: building {image.dockerfile.relative_to(ROOT)} (inputs {key})")
    build_args = ["--build-arg", f"BASE_IMAGE={image.base.tag}"] if image.base else []
    if HOST_CA_BUNDLE.exists():
        # The host's trust store (it may hold a TLS-inspecting proxy's CA) for the build's downloads
        # only: a volume is never part of the image.
        build_args += ["--volume", f"{HOST_CA_BUNDLE}:{HOST_CA_BUNDLE}:ro"]
    _buildah(
        "bud", "--quiet", "--layers", "--force-rm", "--network", "host", *build_args,
        "-f", str(image.dockerfile), "-t", image.reference, str(image.context),
    )  # fmt: skip
    partial = archive.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    _buildah("push", "--quiet", image.reference, f"docker-archive:{partial}:{image.reference}")
    partial.rename(archive)
    _buildah("rmi", "--prune")  # the images this build replaced: only the current ones and their layers stay
    for stale in cache_dir().glob(f"{image.name}-*.tar"):
        if stale != archive:
            stale.unlink()
    say(f"image {image.reference}: built in {time.monotonic() - started:.0f}s, {archive.stat().st_size >> 20} MiB")
    return archive


def ensure_all(say: Callable[[str], None] = lambda _: None) -> dict[str, pathlib.Path]:
    """Every image's archive, by reference (built when missing)."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    return {image.reference: ensure(image, say) for image in IMAGES}
