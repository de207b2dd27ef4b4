"""Signing packages: the ed25519 key pair beside the store, a version's ``SIGNATURE`` and
``public_key.pem``, and checking them (with or without a pinned key).

What is signed is a *seal*: the SHA-256 of the version's MANIFEST.json (which lists the SHA-256 of
every other file of the version) and of the package root's ``settings.json``. ``SIGNATURE`` and
``public_key.pem`` sit beside MANIFEST.json and are not listed in it (the manifest is what they
sign). A signature proves that whoever holds the private key sealed exactly these bytes; it says
nothing about who that is unless the verifier pins the public key it accepts
(``--public-key PATH`` or ``$MLOPS_NB_PUBLIC_KEY``): the package carries its own public key, so an
unpinned check only proves the package is as its signer left it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_nb.deploy.layout import MANIFEST, SETTINGS_FILE, file_digest, write_atomic
from mlops_nb.errors import ChecksumError, PackageError

KEYS_DIR = "mlops-keys"
PRIVATE_KEY_FILE = "signing_key.pem"
PUBLIC_KEY_FILE = "public_key.pem"
SIGNATURE_FILE = "SIGNATURE"
#: The setting that pins the public key a verifier accepts (a path to a PEM file).
PUBLIC_KEY_ENV = "MLOPS_NB_PUBLIC_KEY"
ALGORITHM = "ed25519"


@dataclass(frozen=True)
class Seal:
    """What one signing produced: the manifest's and settings' SHA-256, the signature (base64) and
    the signing key's id."""

    manifest_sha256: str
    settings_sha256: str | None
    signature: str
    key_id: str


def key_id(public_pem: bytes) -> str:
    """The fingerprint of a public key: SHA-256 of its raw 32 bytes, 32 hex digits."""
    return hashlib.sha256(_public_key(public_pem).public_bytes_raw()).hexdigest()[:32]


def _public_key(pem: bytes) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        key = load_pem_public_key(pem)
    except ValueError as exc:
        raise ChecksumError(f"a public key that cannot be read ({exc}); export the package again") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ChecksumError("the public key is not an ed25519 key; export the package again")
    return key


def keys_dir(store_path: str | os.PathLike) -> Path:
    """Where the signing key pair of the store at ``store_path`` lives: ``mlops-keys/`` beside it."""
    return Path(store_path).absolute().parent / KEYS_DIR


def signing_key(store_path: str | os.PathLike) -> tuple[Any, bytes]:
    """The private key and public PEM beside the store, created on first use (the private key
    readable by its owner only)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = keys_dir(store_path)
    private_path, public_path = folder / PRIVATE_KEY_FILE, folder / PUBLIC_KEY_FILE
    if not private_path.is_file():
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
        try:
            fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use theirs
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
                f.flush()
                os.fsync(f.fileno())
    try:
        key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise PackageError(f"cannot read the signing key {private_path} ({exc}); restore it from a backup, "
                           f"or move the folder away to create a new key (pinned servers will then refuse)") from None
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    if not public_path.is_file() or public_path.read_bytes() != public:
        write_atomic(public_path, public)
    return key, public


def settings_digest(root: Path | None) -> str | None:
    """SHA-256 of the package root's settings.json (None when there is no root or no file)."""
    if root is None or not (root / SETTINGS_FILE).is_file():
        return None
    return file_digest(root / SETTINGS_FILE)[0]


def payload(manifest_sha256: str, settings_sha256: str | None) -> bytes:
    """The bytes a seal signs."""
    return json.dumps({"algorithm": ALGORITHM, "format": 1, "manifest_sha256": manifest_sha256,
                       "settings_sha256": settings_sha256}, sort_keys=True).encode()


def sign(folder: Path, root: Path | None, store_path: str | os.PathLike) -> Seal:
    """Sign version ``folder`` (its MANIFEST.json) with the settings.json of ``root`` using the key
    beside the store; write ``SIGNATURE`` and ``public_key.pem`` into the folder."""
    key, public = signing_key(store_path)
    manifest_sha = file_digest(folder / MANIFEST)[0]
    settings_sha = settings_digest(root)
    signature = base64.b64encode(key.sign(payload(manifest_sha, settings_sha))).decode()
    seal = Seal(manifest_sha, settings_sha, signature, key_id(public))
    document = {"algorithm": ALGORITHM, "key_id": seal.key_id, "manifest_sha256": manifest_sha,
                "settings_sha256": settings_sha, "signature": signature}
    write_atomic(folder / PUBLIC_KEY_FILE, public)
    write_atomic(folder / SIGNATURE_FILE, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())
    return seal


def signature_valid(public_pem: bytes, signature: str, manifest_sha256: str, settings_sha256: str | None) -> bool:
    """Whether ``signature`` (base64) by ``public_pem`` seals these two digests."""
    from cryptography.exceptions import InvalidSignature

    try:
        _public_key(public_pem).verify(base64.b64decode(signature), payload(manifest_sha256, settings_sha256))
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


def pinned_key(public_key: str | os.PathLike | None = None) -> bytes | None:
    """The public key PEM a verifier accepts: ``public_key`` (a path), else ``$MLOPS_NB_PUBLIC_KEY``,
    else None (any key the package carries)."""
    path = public_key or os.environ.get(PUBLIC_KEY_ENV) or None
    if path is None:
        return None
    try:
        pem = Path(path).expanduser().read_bytes()
    except OSError as exc:
        raise PackageError(f"cannot read the pinned public key {path} ({exc.strerror}); give the path of the "
                           f"public_key.pem of the store that signs your packages") from None
    key_id(pem)  # refuses a file that is not an ed25519 public key
    return pem


def read_signature(folder: Path) -> tuple[dict[str, Any], bytes]:
    """The version's SIGNATURE document and public_key.pem; :class:`ChecksumError` when missing."""
    try:
        document = json.loads((folder / SIGNATURE_FILE).read_text(encoding="utf-8"))
        public = (folder / PUBLIC_KEY_FILE).read_bytes()
    except FileNotFoundError as exc:
        raise ChecksumError(f"package {folder} is not signed ({Path(exc.filename).name} is missing) and no store "
                            f"records it; run `mlops-nb reseal {folder}` where its store is, or export it again"
                            ) from None
    except (OSError, ValueError) as exc:
        raise ChecksumError(f"{folder / SIGNATURE_FILE} cannot be read ({exc}); export the package again") from None
    if not isinstance(document, dict) or not isinstance(document.get("signature"), str):
        raise ChecksumError(f"{folder / SIGNATURE_FILE} holds no signature; export the package again")
    return document, public


def seal_and_record(folder: Path, root: Path | None, package: str | os.PathLike, *, store: Any, reason: str,
                    run_id: int) -> Seal:
    """Sign version ``folder`` (settings from ``root``) with the key beside ``store`` and record its
    manifest through tracking as version ``folder.name`` of package root ``package``."""
    from mlops_nb.tracking.manifests import record_manifest

    seal = sign(folder, root, store.path)
    data = (folder / MANIFEST).read_bytes()
    model = json.loads(data).get("model") or {}
    record_manifest(data, package=str(Path(package).absolute()), version_dir=folder.name,
                    run_id=run_id, reason=reason, signature=seal.signature, key_id=seal.key_id,
                    model_name=model.get("name"), model_version=model.get("version"), store=store)
    return seal
