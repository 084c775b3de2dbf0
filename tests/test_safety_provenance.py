"""C2PA on real outputs (the pipeline's save path and the media writers), tamper detection, trust,
credentials, and `tenku verify` exit codes through a real subprocess."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from _safety_clips import synthetic_clip
from tenku import media
from tenku.pipeline.output import PipelineOutput, save_output
from tenku.safety import provenance
from tenku.safety.policy import Safety
from tenku.safety.provenance import ProvenanceError, Signing, read_manifest, sign_file


@pytest.fixture(autouse=True)
def _home(tmp_path_factory, monkeypatch):
    # for the `tenku verify` subprocesses, whose edge (cli.main) reads the environment
    monkeypatch.setenv("TENKU_HOME", str(tmp_path_factory.getbasetemp() / "tenku_home"))
    for k in ("TENKU_C2PA_CERT", "TENKU_C2PA_KEY", "TENKU_C2PA_TRUST_ANCHORS", "TENKU_PROVENANCE"):
        monkeypatch.delenv(k, raising=False)


@pytest.fixture
def safety(tmp_path_factory):
    """The policy the CLI builds from this module's environment: signing with the local CA in the test home."""
    return Safety(signing=Signing(home=str(tmp_path_factory.getbasetemp() / "tenku_home")))


def _output():
    return PipelineOutput(synthetic_clip(5), 8.0, {"prompt": "a red ball rolls", "seed": 3, "model": "tenku-test"})


def _flip_media_byte(path, out):
    data = bytearray(path.read_bytes())
    i = data.find(b"mdat") + 64 if path.suffix == ".mp4" else data.find(b"IDAT") + 16
    data[i] ^= 0x01
    out.write_bytes(bytes(data))
    return out


@pytest.mark.parametrize("suffix", [".mp4", ".png"])
def test_save_output_signs_and_tamper_is_detected(tmp_path, suffix, safety):
    path = save_output(_output(), tmp_path / f"out{suffix}", safety=safety)
    r = read_manifest(path)
    assert r.state == "valid" and not r.trusted
    action = r.claims["actions"][0]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == provenance.DIGITAL_SOURCE_TYPE
    assert action["softwareAgent"]["name"] == "tenku"
    assert action["parameters"]["model"] == "tenku-test"
    assert action["parameters"]["generation"]["prompt"] == "a red ball rolls"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary files left
    tampered = read_manifest(_flip_media_byte(path, tmp_path / f"t{suffix}"))
    assert tampered.state == "invalid" and tampered.failures
    ca = tmp_path.parent / "tenku_home" / "c2pa" / "ca.pem"
    assert read_manifest(path, trust_anchors=ca).state == "trusted"


def test_prompt_can_be_left_out(tmp_path, safety):
    path = save_output(_output(), tmp_path / "p.png", include_prompt=False, safety=safety)
    gen = read_manifest(path).claims["actions"][0]["parameters"]["generation"]
    assert "prompt" not in gen and gen["seed"] == 3


def test_media_writer_output_signs(tmp_path, safety):
    path = media.write_video(tmp_path / "v.mp4", synthetic_clip(1), 8)
    assert read_manifest(path).state == "absent"
    sign_file(path, model="m", parameters={"seed": 1}, signing=safety.signing)
    assert read_manifest(path).state == "valid"


def test_signing_settings_come_from_the_environment_the_edge_passes(tmp_path):
    env = {"TENKU_C2PA_CERT": "c.pem", "TENKU_C2PA_KEY": "k.pem", "TENKU_HOME": str(tmp_path),
           "TENKU_C2PA_TRUST_ANCHORS": "ca.pem"}
    assert Safety.from_env(env).signing == Signing(cert="c.pem", key="k.pem", home=str(tmp_path),
                                                   trust_anchors="ca.pem")
    assert Safety.from_env({}).signing == Signing()
    assert Signing().home_path == provenance.DEFAULT_HOME.expanduser()
    # the local CA is made in the home the policy names, and an output signed by it says so
    path = save_output(_output(), tmp_path / "o.png", safety=Safety(signing=Signing(home=str(tmp_path / "h"))))
    assert (tmp_path / "h" / "c2pa" / "ca.pem").is_file()
    assert read_manifest(path, trust_anchors=tmp_path / "h" / "c2pa" / "ca.pem").state == "trusted"


def test_bad_credentials_are_clear_errors(tmp_path, safety):
    home = safety.signing.home_path / "c2pa"
    with pytest.raises(ProvenanceError, match="both"):
        provenance.load_credentials(Signing(cert=str(tmp_path / "missing.pem")))
    with pytest.raises(ProvenanceError, match="not found"):
        provenance.load_credentials(Signing(cert=str(tmp_path / "missing.pem"), key=str(tmp_path / "missing.key")))
    provenance.local_credentials(home)
    (tmp_path / "k.pem").write_bytes((home / "ca.pem").read_bytes())  # a certificate, not a key
    with pytest.raises(ProvenanceError, match="private"):
        provenance.load_credentials(Signing(cert=str(home / "chain.pem"), key=str(tmp_path / "k.pem")))
    path = save_output(_output(), tmp_path / "o.png", safety=safety)
    with pytest.raises(ProvenanceError, match="trust anchors file not found"):
        read_manifest(path, trust_anchors=tmp_path / "missing-ca.pem")


def _verify(path, *extra):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "tenku", "verify", str(path), *extra], capture_output=True,
                          text=True, env=env, timeout=120)


def test_verify_cli_exit_codes(tmp_path, safety, monkeypatch):
    path = save_output(_output(), tmp_path / "out.mp4", safety=safety)
    r = _verify(path, "--json")
    report = json.loads(r.stdout)
    assert r.returncode == 0, r.stdout + r.stderr
    assert report["verdict"] == "complete" and report["watermark"]["detected"] and report["c2pa"]["state"] == "valid"
    assert "untrusted" in report["note"]
    assert _verify(_flip_media_byte(path, tmp_path / "t.mp4")).returncode == 3
    frames, fps = media.read_video(path)
    reencoded = media.write_video(tmp_path / "re.mp4", frames, fps, crf=28)  # a remux strips the manifest
    r = _verify(reencoded)
    assert r.returncode == 4 and "watermark: present" in r.stdout
    plain = media.write_video(tmp_path / "plain.mp4", synthetic_clip(7), 8)
    assert _verify(plain).returncode == 1
    r = _verify(tmp_path / "missing.mp4")
    assert r.returncode == 2 and r.stderr.startswith("error:")
    # the CLI's edge reads the trust anchors from the environment
    monkeypatch.setenv("TENKU_C2PA_TRUST_ANCHORS", str(safety.signing.home_path / "c2pa" / "ca.pem"))
    report = json.loads(_verify(path, "--json").stdout)
    assert report["c2pa"]["state"] == "trusted"
