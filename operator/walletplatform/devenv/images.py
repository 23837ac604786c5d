"""The images the local node runs, built without a registry or a Docker engine, from the project's own
Dockerfiles: buildah (Debian's, overlay storage, chroot isolation) builds each Dockerfile FROM a Debian
base image made here with mmdebstrap, pushes it to an image archive, and the node imports the archive
into containerd. Each archive is cached outside the clone, keyed by the hash of everything that goes
into it (Dockerfile, build context files, build arguments, base image), so a warm run builds nothing.

``walletctl images`` and devenv.node call ``ensure_all``."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pathlib
import subprocess
import time
from collections.abc import Callable

from walletplatform.devenv import toolchain

ROOT = toolchain.ROOT
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The base of every local image: Debian minbase with Python 3.11 (the operator's and the reference
# service's interpreter); the Dockerfiles take it as BASE_IMAGE instead of their public default.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
BASE_TAG = f"localhost/wallet-debian-python:{DEBIAN_SUITE}"
VERSION = "0.1.0"
HOST_CA_BUNDLE = pathlib.Path("/etc/ssl/certs/ca-certificates.crt")
# overlay, not vfs: vfs stores a full copy of the root filesystem per layer (31 GB after a few dozen
# operator builds filled this machine's disk); overlay stores each layer's changes only.
STORAGE_DRIVER = "overlay"


@dataclasses.dataclass(frozen=True)
class Image:
    """One image: its reference, its Dockerfile and build context, and the inputs that key its cache."""

    name: str
    reference: str
    dockerfile: pathlib.Path
    context: pathlib.Path
    inputs: tuple[str, ...]  # globs relative to the context
    base: bool = True  # built FROM the local Debian base (BASE_IMAGE build argument)


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
)  # fmt: skip
PAUSE = IMAGES[0].reference
SERVICE = IMAGES[1].reference
OPERATOR = IMAGES[2].reference


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
    """A hash of every input of the image (file names and bytes), its build arguments and base."""
    digest = hashlib.sha256(f"{image.reference}\n{base_key}\n".encode())
    files = sorted({p for pattern in image.inputs for p in image.context.glob(pattern) if p.is_file()})
    for path in files:
        digest.update(str(path.relative_to(image.context)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def ensure_base(say: Callable[[str], None]) -> str:
    """The local Debian + Python base in buildah's storage; returns its cache key."""
    key = hashlib.sha256(f"{DEBIAN_SUITE} {DEBIAN_MIRROR} {' '.join(BASE_PACKAGES)}".encode()).hexdigest()[:16]
    folder = cache_dir() / f"base-{key}"
    marker = folder / "built"
    if marker.exists() and _buildah("images", "-q", BASE_TAG).strip():
        return key
    folder.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    say(f"image base: mmdebstrap {DEBIAN_SUITE} minbase + {', '.join(BASE_PACKAGES)}")
    rootfs = folder / "rootfs.tar"
    subprocess.run(
        ["mmdebstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "--format=tar",
         "--aptopt=Acquire::Retries=3", DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR],
        check=True, capture_output=True, timeout=1200,
    )  # fmt: skip
    (folder / "Dockerfile").write_text('FROM scratch\nADD rootfs.tar /\nCMD ["/bin/bash"]\n')
    _buildah("bud", "--quiet", "-f", str(folder / "Dockerfile"), "-t", BASE_TAG, str(folder))
    rootfs.unlink()
    marker.write_text(key)
    say(f"image base: built in {time.monotonic() - started:.0f}s")
    return key


def ensure(image: Image, base_key: str, say: Callable[[str], None]) -> pathlib.Path:
    """The image's archive, built from its Dockerfile unless the cache holds one for the same inputs."""
    key = content_key(image, base_key)
    archive = cache_dir() / f"{image.name}-{key}.tar"
    if archive.exists():
        return archive
    started = time.monotonic()
    say(f"image {image.reference}: building {image.dockerfile.relative_to(ROOT)} (inputs {key})")
    build_args = ["--build-arg", f"BASE_IMAGE={BASE_TAG}"] if image.base else []
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
    base_key = ensure_base(say)
    return {image.reference: ensure(image, base_key, say) for image in IMAGES}
