"""C2PA provenance: sign every mp4/png tenku writes, and read a file's manifest back.

A manifest carries one ``c2pa.created`` action with digital source type ``trainedAlgorithmicMedia``,
the software agent (tenku and its version), the model name and the generation parameters the caller
chose to include (the prompt only when ``include_prompt`` is true). Signing is ES256 with no
timestamp authority, so it needs no network.

Credentials come from a :class:`Signing` (the edges build it from ``TENKU_C2PA_CERT``: PEM chain, leaf
first; ``TENKU_C2PA_KEY``: PEM private key; ``TENKU_HOME``; ``TENKU_C2PA_TRUST_ANCHORS``), else from a
local private CA that is created once under ``HOME/c2pa`` (default ``~/.config/tenku/c2pa``). C2PA refuses self-signed leaves, so the local
set is a CA plus a leaf it signs. Marks made with it verify as *valid but untrusted*: nobody but you
knows that CA. Pass its ``ca.pem`` (or your organisation's root) as a trust anchor to get *trusted*.

Sign last: any remux after signing strips or breaks the manifest.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from tenku import __version__
from tenku.errors import TenkuError

log = logging.getLogger(__name__)

DIGITAL_SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME_TYPES = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".png": "image/png",
              ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
LOCAL_CA_NAME = "tenku local CA (untrusted)"
UNTRUSTED_NOTE = ("signed with tenku's local CA: the manifest verifies as valid but untrusted; configure "
                  "TENKU_C2PA_CERT/TENKU_C2PA_KEY with a certificate from a CA others trust")


class ProvenanceError(TenkuError):
    """A C2PA manifest cannot be written or the signing credentials are unusable."""


def _c2pa():
    try:
        import c2pa
    except ImportError:  # pragma: no cover - depends on the environment
        raise ProvenanceError("C2PA signing needs c2pa-python, one of tenku's dependencies, which is not "
                              "installed here; reinstall tenku (pip install tenku, or pip install -e . in a "
                              "checkout)") from None
    return c2pa


DEFAULT_HOME = Path("~/.config/tenku")


@dataclass(frozen=True)
class Signing:
    """Where C2PA credentials come from. ``cert``/``key``: PEM chain (leaf first) and private key files (both
    or neither; neither signs with the local CA); ``home``: the folder holding the local CA (``home/c2pa``);
    ``trust_anchors``: PEM file of CAs whose signatures read as *trusted*."""

    cert: str | None = None
    key: str | None = None
    home: str | None = None
    trust_anchors: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Signing":
        """The settings in an environment mapping (``TENKU_C2PA_CERT``, ``TENKU_C2PA_KEY``, ``TENKU_HOME``,
        ``TENKU_C2PA_TRUST_ANCHORS``); the edges pass ``os.environ``."""
        return cls(cert=env.get("TENKU_C2PA_CERT") or None, key=env.get("TENKU_C2PA_KEY") or None,
                   home=env.get("TENKU_HOME") or None, trust_anchors=env.get("TENKU_C2PA_TRUST_ANCHORS") or None)

    @property
    def home_path(self) -> Path:
        return Path(self.home or DEFAULT_HOME).expanduser()


@dataclass(frozen=True)
class SigningCredentials:
    cert_chain_pem: bytes  # leaf first, then intermediates
    key_pem: bytes
    local: bool  # True when this is tenku's local CA (valid but untrusted)
    source: str  # where the credentials came from, for messages
    ca_pem: bytes | None = None  # the local CA certificate (a trust anchor you may choose to trust)


def _write_private(path: Path, data: bytes, mode: int) -> None:
    path.write_bytes(data)
    os.chmod(path, mode)


def _make_local_ca(folder: Path) -> None:
    """Create ca.pem, chain.pem (leaf + CA) and key.pem (leaf key) in ``folder`` (must not exist)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)

    def usage(sign: bool, ca: bool):
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, LOCAL_CA_NAME),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tenku local")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(usage(False, True), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenku local signer"),
                           x509.NameAttribute(NameOID.ORGANIZATION_NAME, "tenku local")])
    document_signing = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
    leaf = (x509.CertificateBuilder().subject_name(leaf_name).issuer_name(ca_name)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(usage(True, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION, document_signing]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    ca_pem = ca.public_bytes(pem)
    _write_private(folder / "ca.pem", ca_pem, 0o644)
    _write_private(folder / "chain.pem", leaf.public_bytes(pem) + ca_pem, 0o644)
    key = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    _write_private(folder / "key.pem", key, 0o600)


def local_credentials(folder: str | Path | None = None) -> SigningCredentials:
    """The local CA + leaf in ``folder`` (default ``~/.config/tenku/c2pa``), created on first use (atomically:
    concurrent callers get the same set)."""
    folder = Path(folder) if folder else Signing().home_path / "c2pa"
    if not (folder / "chain.pem").is_file():
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".c2pa.", dir=folder.parent))
        try:
            _make_local_ca(tmp)
            try:
                os.rename(tmp, folder)
                log.warning("created a local C2PA CA in %s; %s", folder, UNTRUSTED_NOTE)
            except OSError:
                if not (folder / "chain.pem").is_file():
                    raise ProvenanceError(f"cannot create the local C2PA CA in {folder}: the path exists "
                                          "but holds no chain.pem; remove it or set TENKU_HOME") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return SigningCredentials((folder / "chain.pem").read_bytes(), (folder / "key.pem").read_bytes(),
                              local=True, source=str(folder), ca_pem=(folder / "ca.pem").read_bytes())


def load_credentials(signing: Signing | None = None) -> SigningCredentials:
    """The credentials ``signing`` names (its cert and key), else the local CA in its home."""
    signing = signing or Signing()
    cert, key = signing.cert, signing.key
    if not cert and not key:
        return local_credentials(signing.home_path / "c2pa")
    if not cert or not key:
        raise ProvenanceError("C2PA signing needs both a certificate chain and a private key "
                              "(TENKU_C2PA_CERT and TENKU_C2PA_KEY, PEM files); only one was given")
    paths = Path(cert).expanduser(), Path(key).expanduser()
    for p in paths:
        if not p.is_file():
            raise ProvenanceError(f"C2PA credential file not found: {p} (expected a PEM file)")
    chain, key_pem = paths[0].read_bytes(), paths[1].read_bytes()
    if b"BEGIN CERTIFICATE" not in chain or b"PRIVATE KEY" not in key_pem:
        raise ProvenanceError(f"{paths[0]} must hold PEM certificates (leaf first) and {paths[1]} a PEM private "
                              "key (ES256 / P-256)")
    return SigningCredentials(chain, key_pem, local=False, source=f"{paths[0]}")


def build_manifest(title: str, model: str | None = None, parameters: dict | None = None,
                   include_prompt: bool = True, watermark: dict | None = None) -> dict:
    """The manifest definition for one generated file."""
    params = {k: v for k, v in (parameters or {}).items() if v is not None}
    if not include_prompt:
        params.pop("prompt", None)
        params.pop("negative_prompt", None)
    action_params = {"model": model or "unknown", "generation": params}
    if watermark:
        action_params["tenku_watermark"] = watermark
    return {
        "claim_generator_info": [{"name": "tenku", "version": __version__}],
        "title": title,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [{
            "action": "c2pa.created",
            "digitalSourceType": DIGITAL_SOURCE_TYPE,
            "softwareAgent": {"name": "tenku", "version": __version__},
            "parameters": action_params,
        }]}}],
    }


def mime_type(path: Path) -> str:
    mime = MIME_TYPES.get(path.suffix.lower())
    if mime is None:
        raise ProvenanceError(f"cannot sign {path.name}: C2PA signing supports {', '.join(sorted(MIME_TYPES))}")
    return mime


def sign_file(path: str | Path, *, dest: str | Path | None = None, model: str | None = None,
              parameters: dict | None = None, include_prompt: bool = True, watermark: dict | None = None,
              credentials: SigningCredentials | None = None, signing: Signing | None = None) -> Path:
    """Embed a signed C2PA manifest into ``path`` in place, or into ``dest`` (same type) if given, with
    ``credentials``, else those ``signing`` names. The signed file is written to a temporary name and renamed
    into place."""
    from tenku.media import atomic_path

    c2pa = _c2pa()
    path = Path(path)
    dest = Path(dest) if dest is not None else path
    mime = mime_type(dest)
    if not path.is_file():
        raise ProvenanceError(f"cannot sign {path}: file not found")
    creds = credentials or load_credentials(signing)
    manifest = build_manifest(dest.name, model, parameters, include_prompt, watermark)
    try:
        signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, creds.cert_chain_pem,
                                                           creds.key_pem, None))
    except (c2pa.C2paError, ValueError) as e:
        raise ProvenanceError(f"the C2PA credentials from {creds.source} are unusable: {e}; expected an ES256 "
                              "(P-256) key and a chain whose leaf is signed by a CA") from None
    try:
        with atomic_path(dest) as tmp, c2pa.Builder(manifest) as builder:
            with open(path, "rb") as src, open(tmp, "w+b") as dst:
                builder.sign(signer, mime, src, dst)
    except c2pa.C2paError as e:
        raise ProvenanceError(f"C2PA signing of {path} failed: {e}") from None
    finally:
        signer.close()
    return dest


@dataclass
class ManifestReport:
    """What a file's C2PA manifest says. ``state``: absent | valid | invalid | trusted."""

    state: str
    trusted: bool = False
    claims: dict = field(default_factory=dict)
    failures: list = field(default_factory=list)
    signer: dict = field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict:
        return {"state": self.state, "trusted": self.trusted, "claims": self.claims, "failures": self.failures,
                "signer": self.signer, "error": self.error}


def _claims(manifest: dict) -> dict:
    out = {"claim_generator": manifest.get("claim_generator_info"), "title": manifest.get("title")}
    for a in manifest.get("assertions", []):
        if a.get("label", "").startswith("c2pa.actions"):
            out["actions"] = a.get("data", {}).get("actions", [])
    return out


# Findings about the trust list only (not about integrity): they decide "trusted", not "valid".
_TRUST_CODES = {"signingCredential.untrusted"}


def read_manifest(path: str | Path, trust_anchors: str | Path | bytes | None = None) -> ManifestReport:
    """Read and validate the manifest of ``path``; ``trust_anchors`` (PEM bytes or a PEM file) decides
    *trusted*."""
    c2pa = _c2pa()
    path = Path(path)
    if not path.is_file():
        raise ProvenanceError(f"file not found: {path}")
    mime = MIME_TYPES.get(path.suffix.lower())
    try:
        with open(path, "rb") as f:
            reader = c2pa.Reader.try_create(mime or None, f) if mime else c2pa.Reader.try_create(f)
            if reader is None:
                return ManifestReport("absent")
            with reader:
                data = json.loads(reader.json())
    except c2pa.C2paError as e:
        text = str(e)
        if "not found" in text.lower() or "no jumbf" in text.lower() or "NotSupported" in type(e).__name__:
            return ManifestReport("absent", error=text)
        return ManifestReport("invalid", error=text)
    active = data.get("manifests", {}).get(data.get("active_manifest"), {})
    results = (data.get("validation_results") or {}).get("activeManifest") or {}
    failures = [{"code": r.get("code"), "explanation": r.get("explanation")} for r in results.get("failure", [])
                if r.get("code") not in _TRUST_CODES]
    state = (data.get("validation_state") or "").lower()
    report = ManifestReport("valid" if state in ("valid", "trusted") and not failures else "invalid",
                            claims=_claims(active), failures=failures, signer=active.get("signature_info", {}))
    if not failures and state not in ("valid", "trusted"):
        report.state = "valid"  # only trust-list findings: the signature and the hashes check out
    if report.state == "valid" and trust_anchors:
        anchors = Path(trust_anchors).expanduser() if not isinstance(trust_anchors, bytes) else None
        if anchors is not None and not anchors.is_file():
            raise ProvenanceError(f"trust anchors file not found: {anchors} (expected a PEM file of CA "
                                  "certificates)")
        pem = trust_anchors if anchors is None else anchors.read_bytes()
        settings = c2pa.Settings.from_dict({"trust": {"trust_anchors": pem.decode()},
                                            "verify": {"verify_trust": True}})
        with c2pa.Context(settings) as ctx, open(path, "rb") as f, c2pa.Reader(mime, f, context=ctx) as r:
            report.trusted = (r.get_validation_state() or "").lower() == "trusted"
        if report.trusted:
            report.state = "trusted"
    return report
