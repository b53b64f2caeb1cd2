"""The Ed25519 key that signs evidence bundles, kept like an SSH host key.

The private key is a PEM (PKCS#8, unencrypted) file, mode 0600, created on first use at
$DRILL_SIGNING_KEY, else $XDG_CONFIG_HOME/drillrunner/signing-key (~/.config when unset),
in a folder of mode 0700. It is never overwritten. A team key is an existing private key
given by path (PEM PKCS#8 or an OpenSSH `ed25519` private key): it is only ever read.
As with SSH, a private key other users can read or write is refused.

What an auditor holds is the public key: its raw 32 bytes in base64 (`drill key --format
base64`), PEM (`--format pem`) or an OpenSSH `ssh-ed25519 AAAA...` line. Its fingerprint is
"SHA256:" + unpadded base64 of sha256(the raw 32-byte public key): OpenSSH's notation, though
ssh-keygen hashes its own wire encoding, so the two tools print different fingerprints.

`cryptography` is imported inside functions: `drill --help` must not pay for it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from drillrunner.core.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ALGORITHM = "ed25519"
ENV_KEY = "DRILL_SIGNING_KEY"


class SigningKeyError(UsageError):
    """A signing or public key that cannot be used as given (missing, unsafe, malformed)."""


def fingerprint(public_raw: bytes) -> str:
    digest = base64.b64encode(hashlib.sha256(public_raw).digest()).decode()
    return "SHA256:" + digest.rstrip("=")


def default_key_path() -> Path:
    env = os.environ.get(ENV_KEY)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".config"
    return base / "drillrunner" / "signing-key"


class Signer:
    """A loaded private key: signs, and says which public key checks its signatures."""

    def __init__(self, key: Ed25519PrivateKey, path: Path) -> None:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._key = key
        self.path = path
        self.public_key_raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.public_key_b64 = base64.b64encode(self.public_key_raw).decode()
        self.fingerprint = fingerprint(self.public_key_raw)

    def sign(self, data: bytes) -> bytes:
        return self._key.sign(data)

    def record(self) -> dict[str, str]:
        """What the journal's run-start carries as `signing`."""
        return {"algorithm": ALGORITHM, "fingerprint": self.fingerprint,
                "public_key": self.public_key_b64}

    def public_pem(self) -> str:
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        pem = self._key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
        return pem.decode()


def load_or_create_key(path: Path | None = None) -> Signer:
    """The signer for `path` (a team key: must exist, never written), or the local key at
    default_key_path(), created on first use."""
    if path is not None:
        if not path.is_file():
            raise SigningKeyError(f"signing key {path}: no such file (a given key is never "
                                  "created; omit it to use the local key)")
        return _load(path)
    local = default_key_path()
    if not local.exists():
        _create(local, own_folder=not os.environ.get(ENV_KEY))
    return _load(local)


def local_signer() -> Signer | None:
    """The local key when it exists (verification never creates one)."""
    path = default_key_path()
    return _load(path) if path.exists() else None


def _create(path: Path, own_folder: bool) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
    )

    folder = path.parent
    if not folder.is_dir():
        folder.mkdir(mode=0o700, parents=True)
        os.chmod(folder, 0o700)  # mkdir's mode passes through the umask
    elif own_folder:
        os.chmod(folder, 0o700)  # ~/.config/drillrunner is ours: tighten it
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    # Written aside, then linked: the link fails if a key appeared meanwhile (never overwrite)
    # and nobody ever reads a half-written key.
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")  # mode 0600
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, pem)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass  # another drill created it first: use theirs
    finally:
        tmp.unlink()


def _load(path: Path) -> Signer:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    try:
        mode = stat.S_IMODE(path.stat().st_mode)
        data = path.read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"signing key {path}: {exc.strerror or exc}") from None
    if mode & 0o077:
        raise SigningKeyError(f"signing key {path}: mode {mode:04o} lets other users read or "
                              f"change it; run 'chmod 600 {path}'")
    key = _parse_private(data, path)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key {path}: not an Ed25519 key")
    return Signer(key, path)


def _parse_private(data: bytes, path: Path) -> Any:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import (
        load_pem_private_key,
        load_ssh_private_key,
    )

    for loader in (load_pem_private_key, load_ssh_private_key):
        try:
            return loader(data, None)
        except TypeError:
            raise SigningKeyError(f"signing key {path}: encrypted keys are not supported "
                                  "(drill signs unattended)") from None
        except (ValueError, binascii.Error, UnsupportedAlgorithm):
            continue
    raise SigningKeyError(f"signing key {path}: not a PEM (PKCS#8) or OpenSSH private key")


def load_public_key(path: Path) -> bytes:
    """The raw 32-byte public key in `path`: base64 of the raw key, PEM, or OpenSSH line."""
    try:
        text = path.read_text(errors="replace").strip()
    except OSError as exc:
        raise SigningKeyError(f"public key {path}: {exc.strerror or exc}") from None
    raw = parse_public_key(text)
    if raw is None:
        hint = ("this is a private key: give its public part ('drill key --format base64')"
                if "PRIVATE KEY" in text else
                "expected the base64 of a raw 32-byte Ed25519 key, a PEM public key or an "
                "'ssh-ed25519 AAAA...' line")
        raise SigningKeyError(f"public key {path}: {hint}")
    return raw


def parse_public_key(text: str) -> bytes | None:
    """Raw 32 bytes from any accepted public-key text, None when it is none of them."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
        load_ssh_public_key,
    )

    if "PRIVATE KEY" in text:
        return None
    try:
        if text.startswith("-----BEGIN"):
            key: Any = load_pem_public_key(text.encode())
        elif text.startswith("ssh-"):
            key = load_ssh_public_key(text.encode())
        else:
            raw = base64.b64decode(text, validate=True)
            return raw if len(raw) == 32 else None
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        return None  # UnsupportedAlgorithm: an RSA or ECDSA key
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def verify_signature(public_raw: bytes, signature: bytes, message: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_raw).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
