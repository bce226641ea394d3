"""Per-trainer credentials, sample caps and the aggregator's environment (pure functions, no sockets)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedna.common.config import WorkerConfig
from sedna.common.errors import ConfigError
from sedna.service.aggregation.admission import (
    Admission,
    HashedCredentials,
    Refused,
    SampleCaps,
    SignedCredentials,
    credential_hash,
    issue_credential,
)
from sedna.service.aggregation.environment import settings_from_env, strategy_from_env
from sedna.service.aggregation.settings import ServerSettings


def test_a_signed_credential_is_bound_to_its_job_and_client_id() -> None:
    own = issue_credential("key", "job", "t0")
    assert own == issue_credential(b"key", "job", "t0") and len(own) == 64
    assert own not in (issue_credential("key", "job", "t1"), issue_credential("key", "other", "t0"),
                       issue_credential("key2", "job", "t0"))
    creds = SignedCredentials("key", "job")
    assert creds.verify("t0", own) and creds.verify("t0", f" {own}\n")
    assert not creds.verify("t1", own) and not creds.verify("t0", "")
    with pytest.raises(ValueError, match="empty"):
        issue_credential("", "job", "t0")


def test_a_hash_table_admits_each_id_with_its_own_credential_only() -> None:
    creds = HashedCredentials({"t0": credential_hash("secret-0"), "t1": credential_hash("secret-1")})
    assert creds.verify("t0", "secret-0") and creds.verify("t1", "secret-1")
    assert not creds.verify("t0", "secret-1") and not creds.verify("t2", "secret-0")
    with pytest.raises(ConfigError, match="client 't1' is not 'sha256:' \\+ 64 hex digits"):
        ServerSettings(client_credential_hashes={"t0": credential_hash("x"), "t1": "sha256:abc"})
    with pytest.raises(ConfigError, match="not both"):
        ServerSettings(client_key="k", client_credential_hashes={"t0": credential_hash("x")})


def test_sample_caps_take_the_tightest_bound_and_name_it() -> None:
    caps = SampleCaps(max_per_client=1000, per_client={"t0": 50})
    assert (caps.cap_for("t0"), caps.cap_for("t1"), SampleCaps().cap_for("t0")) == (50, 1000, 0)
    assert caps.check("t0", 50) is None and caps.check("t1", 1000) is None
    assert caps.check("t0", 51) == "num_samples=51 exceeds the cap of 50 from the dataset count known for " \
                                   "this client (AGG_CLIENT_SAMPLES)"
    assert caps.check("t1", 2**62) == "num_samples=4611686018427387904 exceeds the cap of 1000 from " \
                                      "MAX_SAMPLES_PER_CLIENT"
    assert SampleCaps().check("t0", 2**62) is None


def test_admission_answers_each_refusal_with_its_grpc_status() -> None:
    gate = Admission("job", SignedCredentials("key", "job"), SampleCaps(max_per_client=100))
    own = issue_credential("key", "job", "t0")
    gate.check("t0", "job", 100, own)
    cases = [(("", "job", 1, own), "INVALID_ARGUMENT", "client_id is empty"),
             (("t0", "other", 1, own), "PERMISSION_DENIED", "'other' is not this server's job 'job'"),
             (("t0", "job", 1, ""), "UNAUTHENTICATED", "client id 't0' sent no credential"),
             (("t1", "job", 1, own), "UNAUTHENTICATED", "a credential that is not its own"),
             (("t0", "job", 101, own), "INVALID_ARGUMENT", "hello.num_samples=101 exceeds the cap of 100")]
    for args, code, message in cases:
        with pytest.raises(Refused, match=message) as info:
            gate.check(*args)
        assert info.value.code == code


def test_the_environment_gives_credentials_and_caps(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("file-key\n")
    env = {"JOB_NAME": "job", "AGG_CLIENT_KEY_FILE": str(key_file), "MAX_SAMPLES_PER_CLIENT": "500",
           "AGG_CLIENT_SAMPLES": '{"t0": 40}', "AGG_TOKEN": "job-token"}
    settings = settings_from_env(WorkerConfig.from_env(env))
    assert settings.client_key == "file-key" and settings.token == "job-token"
    assert settings.admission().credentials.verify("t0", issue_credential("file-key", "job", "t0"))
    assert settings.sample_caps() == SampleCaps(500, {"t0": 40})
    assert "file-key" not in repr(settings) and "job-token" not in repr(settings)


@pytest.mark.parametrize(("env", "message"), [
    ({"AGG_CLIENT_SAMPLES": "{t0: 1}"}, "env AGG_CLIENT_SAMPLES is not valid JSON"),
    ({"AGG_CLIENT_SAMPLES": "[1]"}, "env AGG_CLIENT_SAMPLES must be a JSON object"),
    ({"AGG_CLIENT_SAMPLES": '{"t0": -1}'}, "env AGG_CLIENT_SAMPLES\\['t0'\\] must be a non-negative integer"),
    ({"AGG_CLIENT_CREDENTIALS": '{"t0": 5}'}, "env AGG_CLIENT_CREDENTIALS\\['t0'\\] must be a string"),
    ({"MAX_SAMPLES_PER_CLIENT": "many"}, "env MAX_SAMPLES_PER_CLIENT='many' is not an integer"),
    ({"AGG_CLIENT_KEY_FILE": "/nonexistent/key"}, "env AGG_CLIENT_KEY_FILE='/nonexistent/key': cannot read"),
])
def test_a_malformed_setting_is_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from_env(WorkerConfig.from_env(env))


def test_sednas_aggregation_algorithm_names_the_strategy() -> None:
    strategy = strategy_from_env(WorkerConfig.from_env({"aggregation_algorithm": "FedMedian",
                                                         "PARTICIPANTS_COUNT": "4"}))
    assert type(strategy).__name__ == "FedMedian" and strategy.min_available_clients == 4
