"""The newest-version read is hand-written SQL (parameters.selectors._newest_version): the
instances it builds must be the ORM's, field for field, on SQLite here and on PostgreSQL in
the integration test below (JSON, datetimes, binary ciphertext and booleans convert
differently on each backend)."""

from __future__ import annotations

import json
import textwrap

import pytest

from tests.support.cluster import shell_on_postgresql

# Builds two versions of a SecureString with an expiration policy and a plain String, then
# compares what the hand-written read gives with what the ORM gives; prints the comparison.
COMPARE = textwrap.dedent(
    """
    import json
    from datetime import UTC, datetime, timedelta
    from access.authorization import Principal
    from parameters import selectors, services
    from parameters.models import Parameter, ParameterVersion
    from tests.factories import UserFactory

    principal = Principal(user=UserFactory(is_superuser=True))
    expiry = (datetime.now(UTC) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    policy = json.dumps(
        [{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": expiry}}]
    )
    services.parameter_put(
        principal=principal, name="/app/db/password", value="first", parameter_type="SecureString"
    )
    services.parameter_put(
        principal=principal, name="/app/db/password", value="s\u00e9cond", overwrite=True,
        description="the database's", policies=policy, tier="Advanced",
    )
    services.parameter_put(
        principal=principal, name="plain", value="hello", parameter_type="String",
        tags={"team": "a"},
    )

    def fields(instance):
        return {
            field.attname: repr(getattr(instance, field.attname))
            for field in type(instance)._meta.concrete_fields
        }

    compared = {}
    for lookup in ("/app/db/password", "plain"):
        parameter, version = selectors._newest_version(lookup)
        orm = ParameterVersion.objects.select_related("parameter").get(
            parameter__lookup=lookup, version=Parameter.objects.get(lookup=lookup).version
        )
        compared[lookup] = {
            "version_same": fields(version) == fields(orm),
            "parameter_same": fields(parameter) == fields(orm.parameter),
            "differences": [
                name for name, value in fields(version).items() if fields(orm)[name] != value
            ] + [
                name for name, value in fields(parameter).items()
                if fields(orm.parameter)[name] != value
            ],
            "version": version.version,
            "linked": version.parameter is parameter,
            "saved": not version._state.adding and not parameter._state.adding,
        }
    compared["missing"] = selectors._newest_version("/no/such") is None
    print(json.dumps(compared))
    """
)


def _check(compared: dict) -> None:
    secure = compared["/app/db/password"]
    assert secure["differences"] == []
    assert secure["version_same"] and secure["parameter_same"]
    assert secure["version"] == 2
    assert secure["linked"] and secure["saved"]
    assert compared["plain"]["differences"] == []
    assert compared["plain"]["version"] == 1
    assert compared["missing"] is True


@pytest.mark.django_db
def test_the_newest_version_read_builds_the_orms_instances_on_sqlite(capsys):
    exec(COMPARE, {})  # noqa: S102 - the same script the PostgreSQL test runs
    _check(json.loads(capsys.readouterr().out.strip().splitlines()[-1]))


@pytest.mark.integration
def test_the_newest_version_read_builds_the_orms_instances_on_postgresql(tmp_path):
    _check(shell_on_postgresql(COMPARE, tmp_path))
